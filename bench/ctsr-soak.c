/* ctsr-soak: a long run of the ctsrupscale element (issue 9). Pushes N frames (default 10,000)
 * of videotestsrc through ctsrupscale with the timestep animated by a control source (a
 * triangle 0 -> 1 -> 0 every 1000 frames) and the input size changed every 1000 frames
 * through five sizes (twice for 10,000 frames: the first pass is the warm-up), and prints
 * every 500 frames the process' resident memory (VmRSS) and the device memory libctsr holds.
 * At the end: the spread (max - min) of both after the warm-up, and a JSON line.
 *
 * Usage: ctsr-soak [--frames N] [--model FILE]   (default models/ctsr-x2-tiny.safetensors)
 * Uninstalled: GST_PLUGIN_PATH=build/gst build/bench/ctsr-soak
 *
 * The device memory is read from the element's libctsr context (ctsr_device_memory): the
 * tool includes the element's private header for that; it is a measuring tool, not an API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gst/controller/gstinterpolationcontrolsource.h>
#include <gst/controller/gstdirectcontrolbinding.h>
#include <gst/gst.h>

#include "gstctsrupscale.h"

#define SIZES 5
static const int sizes[SIZES][2] = {{32, 24}, {48, 36}, {20, 14}, {64, 40}, {36, 28}};

typedef struct {
    GstElement *up, *capsf;
    long frames, total;
    long warmup;
    long rss_min, rss_max;
    size_t dev_min, dev_max;
    long rss_first, rss_last;
    size_t dev_first, dev_last;
} soak;

static long rss_kib(void)
{
    char *s = NULL, *line;
    long kib = 0;
    if (!g_file_get_contents("/proc/self/status", &s, NULL, NULL))
        return 0;
    if ((line = strstr(s, "VmRSS:")))
        kib = strtol(line + 6, NULL, 10);
    g_free(s);
    return kib;
}

static size_t device_bytes(GstElement *e)
{
    GstCtsrUpscale *self = (GstCtsrUpscale *)e;
    size_t n = 0;
    g_mutex_lock(&self->engine_lock);
    if (self->ctx)
        n = ctsr_device_memory(self->ctx);
    g_mutex_unlock(&self->engine_lock);
    return n;
}

static void set_size(soak *s, int i)
{
    GstCaps *caps = gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "RGBA", "width",
                                        G_TYPE_INT, sizes[i][0], "height", G_TYPE_INT,
                                        sizes[i][1], "framerate", GST_TYPE_FRACTION, 100, 1,
                                        NULL);
    g_object_set(s->capsf, "caps", caps, NULL);
    gst_caps_unref(caps);
}

static GstPadProbeReturn on_buffer(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    soak *s = data;
    (void)pad;
    (void)info;
    s->frames++;
    if (s->frames % 1000 == 0 && s->frames < s->total)
        set_size(s, (int)(s->frames / 1000) % SIZES);
    if (s->frames % 500 == 0) {
        long rss = rss_kib();
        size_t dev = device_bytes(s->up);
        double t = 0;
        g_object_get(s->up, "timestep", &t, NULL);
        printf("frame %6ld  %dx%d  t=%.3f  RSS %6ld KiB  device %8zu bytes\n", s->frames,
               sizes[(s->frames - 1) / 1000 % SIZES][0], sizes[(s->frames - 1) / 1000 % SIZES][1],
               t, rss, dev);
        fflush(stdout);
        if (s->frames > s->warmup) {
            if (!s->rss_first)
                s->rss_first = rss, s->dev_first = dev, s->rss_min = s->rss_max = rss,
                s->dev_min = s->dev_max = dev;
            s->rss_min = MIN(s->rss_min, rss), s->rss_max = MAX(s->rss_max, rss);
            s->dev_min = MIN(s->dev_min, dev), s->dev_max = MAX(s->dev_max, dev);
            s->rss_last = rss, s->dev_last = dev;
        }
    }
    return GST_PAD_PROBE_OK;
}

int main(int argc, char **argv)
{
    soak s = {0};
    const char *model = "models/ctsr-x2-tiny.safetensors";
    s.total = 10000;
    gst_init(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--frames") && i + 1 < argc)
            s.total = atol(argv[++i]);
        else if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--frames N] [--model FILE]\n", argv[0]);
            return 2;
        }
    }
    s.warmup = s.total / 2 > 5000 ? 5000 : s.total / 2;
    char *desc = g_strdup_printf("videotestsrc pattern=ball num-buffers=%ld ! capsfilter name=cf "
                                 "! ctsrupscale name=up model-location=\"%s\" ! "
                                 "fakesink name=sink sync=false", s.total, model);
    GError *error = NULL;
    GstElement *pipeline = gst_parse_launch(desc, &error);
    g_free(desc);
    if (!pipeline) {
        fprintf(stderr, "pipeline: %s\n", error ? error->message : "?");
        return 1;
    }
    s.up = gst_bin_get_by_name(GST_BIN(pipeline), "up");
    s.capsf = gst_bin_get_by_name(GST_BIN(pipeline), "cf");
    set_size(&s, 0);
    /* timestep: a triangle 0 -> 1 -> 0 every 1000 frames (10 ms each) */
    GstControlSource *cs = gst_interpolation_control_source_new();
    g_object_set(cs, "mode", GST_INTERPOLATION_MODE_LINEAR, NULL);
    for (long f = 0; f <= s.total; f += 500)
        gst_timed_value_control_source_set(GST_TIMED_VALUE_CONTROL_SOURCE(cs),
                                           (GstClockTime)f * 10 * GST_MSECOND,
                                           (f / 500) % 2 ? 1.0 : 0.0);
    gst_object_add_control_binding(GST_OBJECT(s.up),
                                   gst_direct_control_binding_new_absolute(GST_OBJECT(s.up),
                                                                           "timestep", cs));
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
    GstPad *pad = gst_element_get_static_pad(sink, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, &s, NULL);

    gint64 t0 = g_get_monotonic_time();
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    GstBus *bus = gst_element_get_bus(pipeline);
    GstMessage *msg = gst_bus_timed_pop_filtered(bus, GST_CLOCK_TIME_NONE,
                                                 GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    int rc = 0;
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
        GError *err = NULL;
        gst_message_parse_error(msg, &err, NULL);
        fprintf(stderr, "error: %s\n", err->message);
        g_error_free(err);
        rc = 1;
    }
    gst_message_unref(msg);
    double secs = (double)(g_get_monotonic_time() - t0) / 1e6;
    gst_element_set_state(pipeline, GST_STATE_NULL);
    printf("%ld frames in %.1f s; after the warm-up (%ld frames): RSS %ld..%ld KiB (spread %ld "
           "KiB, first %ld, last %ld), device memory %zu..%zu bytes (spread %zu)\n",
           s.frames, secs, s.warmup, s.rss_min, s.rss_max, s.rss_max - s.rss_min, s.rss_first,
           s.rss_last, s.dev_min, s.dev_max, s.dev_max - s.dev_min);
    printf("{\"frames\": %ld, \"seconds\": %.1f, \"warmup_frames\": %ld, \"rss_kib_min\": %ld, "
           "\"rss_kib_max\": %ld, \"rss_kib_first\": %ld, \"rss_kib_last\": %ld, "
           "\"device_bytes_min\": %zu, \"device_bytes_max\": %zu}\n", s.frames, secs, s.warmup,
           s.rss_min, s.rss_max, s.rss_first, s.rss_last, s.dev_min, s.dev_max);
    if (s.frames != s.total)
        rc = 1;
    gst_object_unref(pad);
    gst_object_unref(sink);
    gst_object_unref(bus);
    gst_object_unref(s.up);
    gst_object_unref(s.capsf);
    gst_object_unref(pipeline);
    return rc;
}
