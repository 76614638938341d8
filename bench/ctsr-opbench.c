/* ctsr-opbench: device time of one convolution dispatch (shader benchmark mode).
 *   ctsr-opbench [W H CIN COUT K REPS]   default: 640 360 32 32 3 5 */
#include <stdio.h>
#include <stdlib.h>

#include "ctsr.h"
#include "ops.h"

int main(int argc, char **argv)
{
    int w = 640, h = 360, cin = 32, cout = 32, k = 3, reps = 5;
    if (argc == 7)
        w = atoi(argv[1]), h = atoi(argv[2]), cin = atoi(argv[3]), cout = atoi(argv[4]),
        k = atoi(argv[5]), reps = atoi(argv[6]);
    else if (argc != 1) {
        fprintf(stderr, "usage: ctsr-opbench [W H CIN COUT K REPS]\n");
        return 2;
    }
    char err[512];
    ctsr_context *ctx;
    if (ctsr_context_create(&(ctsr_options){.device_index = -1}, &ctx, err, sizeof err)) {
        fprintf(stderr, "ctsr-opbench: %s\n", err);
        return 1;
    }
    double ms;
    if (ctsr_op_conv_bench(ctx, h, w, cin, cout, k, reps, &ms, err, sizeof err)) {
        fprintf(stderr, "ctsr-opbench: %s\n", err);
        return 1;
    }
    double gflop = 2.0 * w * h * cin * cout * k * k / 1e9;
    printf("%s: conv%dx%d %d->%d on %dx%d: %.1f ms, %.1f GFLOP/s\n", ctsr_device_name(ctx), k, k,
           cin, cout, w, h, ms, gflop / (ms / 1e3));
    ctsr_context_destroy(ctx);
    return 0;
}
