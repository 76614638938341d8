// Fused CPU window attention (forward and backward) for training the CTSR student.
//
// Built at first use by training/ctsr/fastattn.py (torch.utils.cpp_extension.load; needs
// g++, ninja-build and Debian's libtorch-dev; no pybind11). Same function as
// student.window_attention; fastattn.py has the math of the backward.
//
// Tensors are NHWC and contiguous: x [N, H, W, 3C] (channels q | k | v, each split into
// `heads` contiguous groups of d = C / heads), y [N, H, W, C]. Windows are the w x w cells
// of a grid anchored at (0, 0); a cell cut by the right or bottom edge just has fewer
// tokens (tv = hv * wv): the student's edge rule, without padding. Every pixel lies in one
// cell, so cells are independent: one parallel_for over them, each cell's data in L1.
//
// Two kernels per direction: one with 8-float vectors for w == 8 (64 tokens, the default
// config; cut cells are masked lanes) and d = 8, 16 or 32, and a scalar one for the rest.
// Also a fused GELU (tanh approximation), whose ATen kernel is slow on this CPU.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace {

typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

inline v8f splat(float a) { return v8f{} + a; }

// exp of 8 floats (Cephes expf polynomial, ~1 ulp; arguments clamped to [-87.3, 88.4])
inline v8f exp8(v8f x) {
  x = x < splat(-87.3365f) ? splat(-87.3365f) : x;
  x = x > splat(88.3762f) ? splat(88.3762f) : x;
  const v8f magic = splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const v8f t = x * 1.44269504088896341f + magic;
  const v8i n = (v8i)t - (v8i)magic;
  const v8f fx = t - magic;
  x = x - fx * 0.693359375f + fx * 2.12194440e-4f;
  v8f y = splat(1.9875691500e-4f);
  y = y * x + 1.3981999507e-3f;
  y = y * x + 8.3334519073e-3f;
  y = y * x + 4.1665795894e-2f;
  y = y * x + 1.6666665459e-1f;
  y = y * x + 5.0000001201e-1f;
  y = y * x * x + x + 1.0f;
  return y * (v8f)((n + 127) << 23);
}

inline float hsum(v8f v) {
  float s = 0.f;
  for (int k = 0; k < 8; ++k) s += v[k];
  return s;
}

inline float hmax(v8f v) {
  float m = v[0];
  for (int k = 1; k < 8; ++k) m = std::max(m, v[k]);
  return m;
}

struct Geo {
  int64_t n, h, w, c, heads, d, win, nwy, nwx, t;
  float scale;
  Geo(const at::Tensor& x, int64_t heads_, int64_t win_) {
    n = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3) / 3;
    heads = heads_, d = c / heads, win = win_, t = win * win;
    nwy = (h + win - 1) / win, nwx = (w + win - 1) / win;
    scale = float(std::pow(double(d), -0.5));  // as student.py: d ** -0.5
  }
};

// one cell: token i (row-major over the hv x wv pixels inside the image) -> pixel index
struct Cell {
  int64_t n, y0, x0, wv, tv, b;
  Cell(const Geo& g, int64_t b_) : b(b_) {
    n = b / (g.nwy * g.nwx);
    y0 = b / g.nwx % g.nwy * g.win, x0 = b % g.nwx * g.win;
    wv = std::min(g.win, g.w - x0);
    tv = std::min(g.win, g.h - y0) * wv;
  }
  int64_t pix(const Geo& g, int64_t i) const { return (n * g.h + y0 + i / wv) * g.w + x0 + i % wv; }
};

// ---- scalar kernels (any w, d) -------------------------------------------------------

struct ScalarFwd {
  std::vector<float> buf;
  float *q, *kt, *v, *s, *acc;
  int64_t tp;
  explicit ScalarFwd(const Geo& g) : buf(3 * g.t * g.d + g.t + g.d), tp(g.t) {
    q = buf.data(), kt = q + tp * g.d, v = kt + tp * g.d, s = v + tp * g.d, acc = s + tp;
  }
  void run(const Geo& g, const Cell& cl, int64_t hd, const float* xp, float* yp, float* lrow) {
    const int64_t d = g.d, tv = cl.tv;
    for (int64_t i = 0; i < tv; ++i) {
      const float* px = xp + cl.pix(g, i) * 3 * g.c + hd * d;
      for (int64_t k = 0; k < d; ++k) {
        q[i * d + k] = px[k] * g.scale;
        kt[k * tp + i] = px[g.c + k];
        v[i * d + k] = px[2 * g.c + k];
      }
    }
    for (int64_t i = 0; i < tv; ++i) {
      std::fill(s, s + tv, 0.f);
      for (int64_t k = 0; k < d; ++k)
        for (int64_t j = 0; j < tv; ++j) s[j] += q[i * d + k] * kt[k * tp + j];
      const float m = *std::max_element(s, s + tv);
      float sum = 0.f;
      for (int64_t j = 0; j < tv; ++j) sum += (s[j] = std::exp(s[j] - m));
      lrow[i] = m + std::log(sum);
      std::fill(acc, acc + d, 0.f);
      for (int64_t j = 0; j < tv; ++j)
        for (int64_t k = 0; k < d; ++k) acc[k] += s[j] * v[j * d + k];
      float* yo = yp + cl.pix(g, i) * g.c + hd * d;
      for (int64_t k = 0; k < d; ++k) yo[k] = acc[k] / sum;
    }
  }
};

struct ScalarBwd {
  std::vector<float> buf;
  float *q, *k, *v, *go, *gk, *gv, *p, *ds, *dsum, *gq;
  explicit ScalarBwd(const Geo& g) : buf(6 * g.t * g.d + 3 * g.t + g.d) {
    const int64_t td = g.t * g.d;
    q = buf.data(), k = q + td, v = k + td, go = v + td, gk = go + td, gv = gk + td;
    p = gv + td, ds = p + g.t, dsum = ds + g.t, gq = dsum + g.t;
  }
  void run(const Geo& g, const Cell& cl, int64_t hd, const float* xp, const float* yp,
           const float* gyp, const float* lrow, float* gxp) {
    const int64_t d = g.d, tv = cl.tv;
    for (int64_t i = 0; i < tv; ++i) {
      const float* px = xp + cl.pix(g, i) * 3 * g.c + hd * d;
      const float* po = yp + cl.pix(g, i) * g.c + hd * d;
      const float* pg = gyp + cl.pix(g, i) * g.c + hd * d;
      float dot = 0.f;
      for (int64_t c = 0; c < d; ++c) {
        q[i * d + c] = px[c] * g.scale;
        k[i * d + c] = px[g.c + c];
        v[i * d + c] = px[2 * g.c + c];
        go[i * d + c] = pg[c];
        dot += pg[c] * po[c];
      }
      dsum[i] = dot;
    }
    std::fill(gk, gk + tv * d, 0.f);
    std::fill(gv, gv + tv * d, 0.f);
    for (int64_t i = 0; i < tv; ++i) {
      for (int64_t j = 0; j < tv; ++j) {
        float s = 0.f, dp = 0.f;
        for (int64_t c = 0; c < d; ++c) {
          s += q[i * d + c] * k[j * d + c];
          dp += go[i * d + c] * v[j * d + c];
        }
        p[j] = std::exp(s - lrow[i]);
        ds[j] = p[j] * (dp - dsum[i]);
      }
      std::fill(gq, gq + d, 0.f);
      for (int64_t j = 0; j < tv; ++j)
        for (int64_t c = 0; c < d; ++c) {
          gq[c] += ds[j] * k[j * d + c];
          gk[j * d + c] += ds[j] * q[i * d + c];
          gv[j * d + c] += p[j] * go[i * d + c];
        }
      float* pq = gxp + cl.pix(g, i) * 3 * g.c + hd * d;
      for (int64_t c = 0; c < d; ++c) pq[c] = gq[c] * g.scale;
    }
    for (int64_t j = 0; j < tv; ++j) {
      float* pk = gxp + cl.pix(g, j) * 3 * g.c + g.c + hd * d;
      for (int64_t c = 0; c < d; ++c) {
        pk[c] = gk[j * d + c];
        pk[g.c + c] = gv[j * d + c];
      }
    }
  }
};

// ---- vector kernels: w == 8 (64 tokens = 8 vectors), d = 8 * DV ---------------------

// lane masks of a cell with tv tokens: mul (1 / 0) and add (0 / -inf)
inline void lane_masks(int64_t tv, v8f* mul, v8f* add) {
  for (int j = 0; j < 64; ++j) {
    mul[j / 8][j % 8] = j < tv ? 1.f : 0.f;
    add[j / 8][j % 8] = j < tv ? 0.f : -std::numeric_limits<float>::infinity();
  }
}

template <int DV>
struct VecFwd {
  static constexpr int D = 8 * DV;
  v8f kt[D][8], v[64][DV], mul[8], add[8];
  float q[64][D];
  explicit VecFwd(const Geo&) {}
  void run(const Geo& g, const Cell& cl, int64_t hd, const float* xp, float* yp, float* lrow) {
    const int64_t tv = cl.tv;
    if (tv < 64) std::memset((void*)kt, 0, sizeof kt), std::memset((void*)v, 0, sizeof v);
    lane_masks(tv, mul, add);
    for (int64_t i = 0; i < tv; ++i) {
      const float* px = xp + cl.pix(g, i) * 3 * g.c + hd * D;
      for (int k = 0; k < D; ++k) {
        q[i][k] = px[k] * g.scale;
        kt[k][i / 8][i % 8] = px[g.c + k];
      }
      std::memcpy((void*)v[i], px + 2 * g.c, sizeof v[i]);
    }
    for (int64_t i = 0; i < tv; ++i) {
      v8f s[8] = {};
      for (int k = 0; k < D; ++k)
        for (int u = 0; u < 8; ++u) s[u] += q[i][k] * kt[k][u];
      v8f mx = s[0] + add[0];
      for (int u = 0; u < 8; ++u) mx = mx > s[u] + add[u] ? mx : s[u] + add[u];
      const float m = hmax(mx);
      v8f sum = {};
      for (int u = 0; u < 8; ++u) sum += (s[u] = exp8(s[u] + add[u] - m) * mul[u]);
      const float l = hsum(sum);
      lrow[i] = m + std::log(l);
      v8f o[DV] = {};
      for (int64_t j = 0; j < tv; ++j) {
        const float pj = s[j / 8][j % 8];
        for (int u = 0; u < DV; ++u) o[u] += pj * v[j][u];
      }
      float* yo = yp + cl.pix(g, i) * g.c + hd * D;
      for (int u = 0; u < DV; ++u) {
        const v8f r = o[u] / l;
        std::memcpy(yo + 8 * u, &r, sizeof r);
      }
    }
  }
};

template <int DV>
struct VecBwd {
  static constexpr int D = 8 * DV;
  v8f kt[D][8], vt[D][8], k[64][DV], p[64][8], ds[64][8], mul[8];
  float q[64][D], go[64][D], dsum[64];
  explicit VecBwd(const Geo&) {}
  void run(const Geo& g, const Cell& cl, int64_t hd, const float* xp, const float* yp,
           const float* gyp, const float* lrow, float* gxp) {
    const int64_t tv = cl.tv;
    v8f add[8];
    lane_masks(tv, mul, add);
    if (tv < 64) std::memset((void*)kt, 0, sizeof kt), std::memset((void*)vt, 0, sizeof vt);
    for (int64_t i = 0; i < tv; ++i) {
      const float* px = xp + cl.pix(g, i) * 3 * g.c + hd * D;
      const float* po = yp + cl.pix(g, i) * g.c + hd * D;
      const float* pg = gyp + cl.pix(g, i) * g.c + hd * D;
      float dot = 0.f;
      for (int c = 0; c < D; ++c) {
        q[i][c] = px[c] * g.scale;
        kt[c][i / 8][i % 8] = px[g.c + c];
        vt[c][i / 8][i % 8] = px[2 * g.c + c];
        go[i][c] = pg[c];
        dot += pg[c] * po[c];
      }
      std::memcpy((void*)k[i], px + g.c, sizeof k[i]);
      dsum[i] = dot;  // rowsum(dP * P) = dO_i . O_i
    }
    for (int64_t i = 0; i < tv; ++i) {  // rows of P and dS; dQ
      v8f s[8] = {}, dp[8] = {};
      for (int c = 0; c < D; ++c)
        for (int u = 0; u < 8; ++u) {
          s[u] += q[i][c] * kt[c][u];
          dp[u] += go[i][c] * vt[c][u];
        }
      for (int u = 0; u < 8; ++u) {
        p[i][u] = exp8(s[u] - lrow[i]) * mul[u];  // P_ij = exp(s Q_i . K_j - lse_i)
        ds[i][u] = p[i][u] * (dp[u] - dsum[i]);   // dS_ij
      }
      v8f gq[DV] = {};
      for (int64_t j = 0; j < tv; ++j) {
        const float dj = ds[i][j / 8][j % 8];
        for (int u = 0; u < DV; ++u) gq[u] += dj * k[j][u];
      }
      float* pq = gxp + cl.pix(g, i) * 3 * g.c + hd * D;
      for (int u = 0; u < DV; ++u) {
        const v8f r = gq[u] * g.scale;
        std::memcpy(pq + 8 * u, &r, sizeof r);
      }
    }
    // dK^T[c] = sum_i (s Q_ic) dS_i and dV^T[c] = sum_i dO_ic P_i, two channels at a time
    // accumulated in registers, written transposed into gx
    grad_t(g, cl, q, ds, gxp + g.c + hd * D);
    grad_t(g, cl, go, p, gxp + 2 * g.c + hd * D);
  }
  // out[pix(j) * 3C + c] = sum_i a[i][c] b[i][j]
  void grad_t(const Geo& g, const Cell& cl, const float (*a)[D], const v8f (*b)[8],
              float* out) {
    for (int c = 0; c < D; c += 2) {
      v8f acc[2][8] = {};
      for (int64_t i = 0; i < cl.tv; ++i) {
        const float a0 = a[i][c], a1 = a[i][c + 1];
        for (int u = 0; u < 8; ++u) {
          acc[0][u] += a0 * b[i][u];
          acc[1][u] += a1 * b[i][u];
        }
      }
      for (int64_t j = 0; j < cl.tv; ++j) {
        float* o = out + cl.pix(g, j) * 3 * g.c + c;
        o[0] = acc[0][j / 8][j % 8];
        o[1] = acc[1][j / 8][j % 8];
      }
    }
  }
};

void check(const at::Tensor& x, const char* name) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat && x.is_contiguous(),
              name, " must be a contiguous float32 CPU tensor");
}

template <class K>
void fwd_cells(const Geo& g, const float* xp, float* yp, float* lp) {
  at::parallel_for(0, g.n * g.nwy * g.nwx, 1, [&](int64_t b0, int64_t b1) {
    K ker(g);
    for (int64_t b = b0; b < b1; ++b) {
      const Cell cl(g, b);
      for (int64_t hd = 0; hd < g.heads; ++hd)
        ker.run(g, cl, hd, xp, yp, lp + (b * g.heads + hd) * g.t);
    }
  });
}

template <class K>
void bwd_cells(const Geo& g, const float* xp, const float* yp, const float* gyp,
               const float* lp, float* gxp) {
  at::parallel_for(0, g.n * g.nwy * g.nwx, 1, [&](int64_t b0, int64_t b1) {
    K ker(g);
    for (int64_t b = b0; b < b1; ++b) {
      const Cell cl(g, b);
      for (int64_t hd = 0; hd < g.heads; ++hd)
        ker.run(g, cl, hd, xp, yp, gyp, lp + (b * g.heads + hd) * g.t, gxp);
    }
  });
}

}  // namespace

// x [N, H, W, 3C] -> y [N, H, W, C], lse [N, nwy, nwx, heads, w*w] (log-sum-exp of each
// softmax row, for the backward)
std::vector<at::Tensor> wattn_forward(at::Tensor x, int64_t heads, int64_t win) {
  check(x, "x");
  const Geo g(x, heads, win);
  auto y = at::empty({g.n, g.h, g.w, g.c}, x.options());
  auto lse = at::empty({g.n, g.nwy, g.nwx, g.heads, g.t}, x.options());
  const float* xp = x.data_ptr<float>();
  float *yp = y.data_ptr<float>(), *lp = lse.data_ptr<float>();
  if (g.win == 8 && g.d == 8)
    fwd_cells<VecFwd<1>>(g, xp, yp, lp);
  else if (g.win == 8 && g.d == 16)
    fwd_cells<VecFwd<2>>(g, xp, yp, lp);
  else if (g.win == 8 && g.d == 32)
    fwd_cells<VecFwd<4>>(g, xp, yp, lp);
  else
    fwd_cells<ScalarFwd>(g, xp, yp, lp);
  return {y, lse};
}

// gradient of x [N, H, W, 3C] from x, y, lse of the forward and gy [N, H, W, C]
at::Tensor wattn_backward(at::Tensor x, at::Tensor y, at::Tensor lse, at::Tensor gy,
                          int64_t heads, int64_t win) {
  check(x, "x");
  check(y, "y");
  check(lse, "lse");
  check(gy, "gy");
  const Geo g(x, heads, win);
  auto gx = at::empty_like(x);
  const float *xp = x.data_ptr<float>(), *yp = y.data_ptr<float>();
  const float *lp = lse.data_ptr<float>(), *gyp = gy.data_ptr<float>();
  float* gxp = gx.data_ptr<float>();
  if (g.win == 8 && g.d == 8)
    bwd_cells<VecBwd<1>>(g, xp, yp, gyp, lp, gxp);
  else if (g.win == 8 && g.d == 16)
    bwd_cells<VecBwd<2>>(g, xp, yp, gyp, lp, gxp);
  else if (g.win == 8 && g.d == 32)
    bwd_cells<VecBwd<4>>(g, xp, yp, gyp, lp, gxp);
  else
    bwd_cells<ScalarBwd>(g, xp, yp, gyp, lp, gxp);
  return gx;
}

// ---- GELU, tanh approximation (F.gelu(x, approximate="tanh")) -------------------------
// 0.5 x (1 + tanh(z)) = x sigmoid(2z), z = sqrt(2/pi) (x + 0.044715 x^3); elementwise over
// the storage of a dense tensor (any memory format; gy must have the strides of x).

namespace {

constexpr float kG0 = float(2 * 0.79788456080286535588);  // 2 sqrt(2/pi)
constexpr float kG1 = float(2 * 0.79788456080286535588 * 0.044715);

// f(i, m): elements [i, i + m), m <= 8 (m == 8 a constant in the main loop, once inlined)
template <class F>
void elementwise8(int64_t n, F f) {
  at::parallel_for(0, (n + 7) / 8, 4096, [&](int64_t b0, int64_t b1) {
    const int64_t full = std::min(b1, n / 8);
    for (int64_t b = b0; b < full; ++b) f(b * 8, 8);
    for (int64_t b = std::max(b0, full); b < b1; ++b) f(b * 8, n - b * 8);
  });
}

inline v8f load8(const float* p, int64_t m) {
  v8f v = {};
  std::memcpy(&v, p, m * sizeof(float));
  return v;
}

inline void check_dense(const at::Tensor& x, const char* name) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat &&
                  x.is_non_overlapping_and_dense(),
              name, " must be a dense float32 CPU tensor");
}

}  // namespace

at::Tensor gelu_forward(at::Tensor x) {
  check_dense(x, "x");
  auto y = at::empty_like(x);  // same strides
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  elementwise8(x.numel(), [&](int64_t i, int64_t m) {
    const v8f v = load8(xp + i, m);
    const v8f r = v / (1.0f + exp8(-v * (kG0 + kG1 * v * v)));
    std::memcpy(yp + i, &r, m * sizeof(float));
  });
  return y;
}

at::Tensor gelu_backward(at::Tensor gy, at::Tensor x) {
  check_dense(x, "x");
  check_dense(gy, "gy");
  TORCH_CHECK(gy.sizes() == x.sizes() && gy.strides() == x.strides(), "gy must match x");
  auto gx = at::empty_like(x);
  const float *xp = x.data_ptr<float>(), *gp = gy.data_ptr<float>();
  float* op = gx.data_ptr<float>();
  elementwise8(x.numel(), [&](int64_t i, int64_t m) {
    const v8f v = load8(xp + i, m), g = load8(gp + i, m);
    const v8f x2 = v * v;
    const v8f sg = 1.0f / (1.0f + exp8(-v * (kG0 + kG1 * x2)));  // sigmoid(2z)
    const v8f r = g * (sg + v * (sg - sg * sg) * (kG0 + 3.0f * kG1 * x2));
    std::memcpy(op + i, &r, m * sizeof(float));
  });
  return gx;
}

// torch.ops.ctsr_fastattn.forward / .backward (a TORCH_LIBRARY needs no pybind11)
TORCH_LIBRARY(ctsr_fastattn, m) {
  m.def("forward", &wattn_forward);
  m.def("backward", &wattn_backward);
  m.def("gelu_forward", &gelu_forward);
  m.def("gelu_backward", &gelu_backward);
}
