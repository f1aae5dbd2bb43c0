/* Self-test of the onnxstream_native shim: every kernel family against plain C reference loops
   on small seeded pseudo-random data, with thread pools of 1 and 2 threads, plus error paths.
   Prints one line per check and a summary; the exit code is 0 only if every check passed. */
#include "onnxstream_native.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { F32 = OSN_DATATYPE_F32, F16 = OSN_DATATYPE_F16, QU8 = OSN_DATATYPE_QU8 };
enum { GUARD = 32, MAX_BUFFERS = 64 };
static const char* const type_name[] = {"f32", "f16", "qu8"};
static const size_t type_size[] = {4, 2, 1};
/* f32 and f16: relative to the largest expected magnitude (at least 1); qu8: quantization steps. */
static const double default_tol[] = {1e-4, 1e-2, 1};
#define DEFAULT_TOL (-1.0)
static const osn_quantization no_quant = {1.0f, 0};
/* XNNPACK's fixed output encoding of qu8 sigmoid and softmax. */
static const osn_quantization unit_quant = {1.0f / 256.0f, 0};

static int passed, failed, skipped;
static const char* pool_tag = "";

/* ---- Helpers ---------------------------------------------------------------------------- */

/* xorshift32: the same sequence on every platform, unlike rand(). */
static uint32_t rng_state = 2463534242u;
static uint32_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)(rng() >> 8) / 16777216.0f; }

/* Buffers of the running check, freed together; every one is over-allocated by OSN_EXTRA_BYTES. */
static void* buffers[MAX_BUFFERS];
static int buffer_count;
static void* alloc(size_t bytes) {
  void* p = calloc(1, bytes + OSN_EXTRA_BYTES + GUARD);
  if (p == NULL || buffer_count == MAX_BUFFERS) {
    fprintf(stderr, "selftest: out of memory\n");
    exit(2);
  }
  return buffers[buffer_count++] = p;
}
static void free_all(void) {
  while (buffer_count > 0) free(buffers[--buffer_count]);
}

/* IEEE binary16 conversions, round-to-nearest-even, written out so the reference needs no
   compiler or hardware f16 support. */
static uint16_t f2h(float f) {
  uint32_t x, sign, abs_x;
  memcpy(&x, &f, 4);
  sign = (x >> 16) & 0x8000u;
  abs_x = x & 0x7FFFFFFFu;
  if (abs_x > 0x7F800000u) return (uint16_t)(sign | 0x7E00u);
  if (abs_x < 0x38800000u) /* below 2^-14: subnormal; scaling by 2^24 is exact */
    return (uint16_t)(sign | (uint32_t)nearbyintf(fabsf(f) * 16777216.0f));
  abs_x -= 0x38000000u; /* rebias the exponent from 127 to 15 */
  abs_x = (abs_x + 0xFFFu + ((abs_x >> 13) & 1u)) >> 13;
  return (uint16_t)(sign | (abs_x > 0x7C00u ? 0x7C00u : abs_x));
}
static float h2f(uint16_t h) {
  uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu, x;
  float f;
  if (e == 0) return (h & 0x8000u) ? -ldexpf((float)m, -24) : ldexpf((float)m, -24);
  x = ((uint32_t)(h & 0x8000u) << 16) | (e == 31 ? 0x7F800000u : (e + 112) << 23) | (m << 13);
  memcpy(&f, &x, 4);
  return f;
}

static uint8_t quantize(double x, osn_quantization q) {
  double v = nearbyint(x / q.scale) + q.zero_point;
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* A tensor of any data type with the exact real values it encodes. */
typedef struct tensor {
  int type;
  osn_quantization q;
  size_t n;
  void* data;
  float* real;
} tensor;

static float get(const tensor* t, size_t i) {
  if (t->type == F32) return ((const float*)t->data)[i];
  if (t->type == F16) return h2f(((const uint16_t*)t->data)[i]);
  return (float)(((const uint8_t*)t->data)[i] - t->q.zero_point) * t->q.scale;
}
static void set(tensor* t, size_t i, float x) {
  if (t->type == F32) ((float*)t->data)[i] = x;
  else if (t->type == F16) ((uint16_t*)t->data)[i] = f2h(x);
  else ((uint8_t*)t->data)[i] = quantize(x, t->q);
  t->real[i] = get(t, i);
}
/* Filled with 0xA5, guard bytes after the end included, to catch unwritten or overrun output. */
static tensor make(int type, osn_quantization q, size_t n) {
  tensor t = {type, q, n, alloc(n * type_size[type]), alloc(n * sizeof(float))};
  memset(t.data, 0xA5, n * type_size[type] + GUARD);
  return t;
}
static tensor random_tensor(int type, osn_quantization q, size_t n, float lo, float hi) {
  tensor t = make(type, q, n);
  for (size_t i = 0; i < n; i++) set(&t, i, frand(lo, hi));
  return t;
}
/* f32/f16 bias of real values, or qu8's int32 bias in units of `unit`. */
static const void* random_bias(int type, size_t n, float unit, float** real) {
  if (type != QU8) {
    tensor t = random_tensor(type, no_quant, n, -1, 1);
    *real = t.real;
    return t.data;
  }
  int32_t* bias = alloc(n * sizeof(int32_t));
  *real = alloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) {
    bias[i] = (int32_t)(rng() % 2001) - 1000;
    (*real)[i] = (float)bias[i] * unit;
  }
  return bias;
}
/* qu8 output quantization that holds the expected values with about 100 steps per sign. */
static osn_quantization fit_quant(const float* want, size_t n) {
  float m = 1e-6f;
  for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(want[i]));
  osn_quantization q = {m / 100.0f, 100};
  return q;
}
static float* floats(size_t n) { return alloc(n * sizeof(float)); }
static size_t numel(size_t rank, const size_t* shape) {
  size_t n = 1;
  for (size_t d = 0; d < rank; d++) n *= shape[d];
  return n;
}

/* NULL if out matches want within tol, else what differs. */
static const char* compare(const tensor* out, const float* want, double tol) {
  static char text[160];
  double mag = 1;
  if (tol < 0) tol = default_tol[out->type];
  for (size_t i = 0; i < out->n; i++)
    if (isfinite(want[i])) mag = fmax(mag, fabs(want[i]));
  for (size_t i = 0; i < out->n; i++) {
    double w = out->type == F16 ? h2f(f2h(want[i])) : want[i], g = get(out, i);
    int bad = out->type == QU8
        ? abs((int)((const uint8_t*)out->data)[i] - (int)quantize(w, out->q)) > tol
        : !(g == w || (isnan(g) && isnan(w)) || fabs(g - w) <= tol * mag);
    if (bad) {
      snprintf(text, sizeof text, "element %zu of %zu: got %.8g, want %.8g", i, out->n, g, w);
      return text;
    }
  }
  for (size_t i = 0; i < GUARD; i++)
    if (((const uint8_t*)out->data)[out->n * type_size[out->type] + i] != 0xA5) return "wrote past the end";
  return NULL;
}
/* NULL if OK, else the status and osn_last_error(). */
static const char* status_error(int32_t status) {
  static char text[300];
  if (status == OSN_STATUS_OK) return NULL;
  snprintf(text, sizeof text, "status %d: %s", (int)status, osn_last_error());
  return text;
}
static const char* run_and_compare(int32_t status, const tensor* out, const float* want, double tol) {
  const char* error = status_error(status);
  return error ? error : compare(out, want, tol);
}
static void report(const char* name, const char* error, int failed_case) {
  if (error == NULL) {
    passed++;
    printf("ok   %s%s\n", name, pool_tag);
  } else {
    failed++;
    printf("FAIL %s%s: ", name, pool_tag);
    if (failed_case >= 0) printf("case %d: ", failed_case);
    printf("%s\n", error);
  }
}

/* ---- Kernel checks: each loops over its cases and reports one line ----------------------- */

typedef struct test {
  const char* name; /* printf format of the data type's name */
  const char* (*run)(const struct test* t, int c, osn_threadpool* pool); /* NULL if case c passed */
  int type, param, cases, needs_f16;
} test;

/* Fully connected; cases: bias, transposed weights with clamping, no bias. */
static const char* fully_connected(const test* t, int c, osn_threadpool* pool) {
  const size_t ic = 37, oc = 19, batch = 5;
  const int transposed = c == 1;
  const int clamped = c == 1 && t->type != QU8; /* qu8 has no clamp argument */
  const float lo = clamped ? -0.5f : -INFINITY, hi = clamped ? 0.5f : INFINITY;
  const osn_quantization qx = {1.0f / 128, 128}, qw = {1.0f / 100, 120};
  tensor x = random_tensor(t->type, qx, batch * ic, -1, 1), w = random_tensor(t->type, qw, oc * ic, -1, 1);
  float *bias_real, *want = floats(batch * oc);
  const void* bias = random_bias(t->type, oc, qx.scale * qw.scale, &bias_real);
  if (c == 2) bias = NULL;
  for (size_t r = 0; r < batch; r++)
    for (size_t o = 0; o < oc; o++) {
      double acc = bias ? bias_real[o] : 0;
      for (size_t i = 0; i < ic; i++) acc += (double)x.real[r * ic + i] * w.real[transposed ? i * oc + o : o * ic + i];
      want[r * oc + o] = (float)fmin(fmax(acc, lo), hi);
    }
  tensor out = make(t->type, fit_quant(want, batch * oc), batch * oc);
  const uint32_t flags = transposed ? OSN_FLAG_TRANSPOSE_WEIGHTS : 0;
  osn_operator* op = NULL;
  int32_t st = t->type == F32 ? osn_fully_connected_create_f32(ic, oc, 0, w.data, bias, lo, hi, flags, &op)
      : t->type == F16 ? osn_fully_connected_create_f16(ic, oc, 0, w.data, bias, lo, hi, flags, &op)
      : osn_fully_connected_create_qu8(ic, oc, 0, qx, qw, w.data, bias, out.q, flags, &op);
  if (st == OSN_STATUS_OK) st = osn_fully_connected_run(op, batch, x.data, out.data, pool);
  if (op) osn_operator_destroy(op);
  return run_and_compare(st, &out, want, DEFAULT_TOL);
}

/* Sliding-window geometry shared by convolution and pooling (their params start alike). */
typedef struct window {
  size_t h, w, pad_top, pad_left, kh, kw, sh, sw, dh, dw, oh, ow;
} window;
#define WINDOW(p, in_h, in_w, kernel_h, kernel_w)                                                         \
  make_window(in_h, in_w, (p)->padding_top + (p)->padding_bottom, (p)->padding_left + (p)->padding_right, \
              (p)->padding_top, (p)->padding_left, kernel_h, kernel_w, (p)->stride_height,                \
              (p)->stride_width, (p)->dilation_height, (p)->dilation_width)
static window make_window(size_t h, size_t w, size_t pad_h, size_t pad_w, size_t pad_top, size_t pad_left,
                          size_t kh, size_t kw, size_t sh, size_t sw, size_t dh, size_t dw) {
  window g = {h, w, pad_top, pad_left, kh, kw, sh, sw, dh, dw,
              (h + pad_h - dh * (kh - 1) - 1) / sh + 1, (w + pad_w - dw * (kw - 1) - 1) / sw + 1};
  return g;
}
/* The input pixel under tap (ky, kx) of output pixel (oy, ox); 0 if it lies in the padding
   (where unsigned wrap-around makes the position >= h or >= w). */
static int tap(const window* g, size_t oy, size_t ox, size_t ky, size_t kx, size_t* iy, size_t* ix) {
  *iy = oy * g->sh + ky * g->dh - g->pad_top;
  *ix = ox * g->sw + kx * g->dw - g->pad_left;
  return *iy < g->h && *ix < g->w;
}

/* Convolution; cases: grouped 3x3 stride 2 with asymmetric padding, depthwise (multiplier 2)
   dilated, pointwise. Fields in header order: padding t r b l, kernel h w, stride h w,
   dilation h w, groups, group input and output channels. */
static const osn_convolution2d_params conv_cases[] = {
    {1, 0, 0, 2, 3, 3, 2, 2, 1, 1, 2, 3, 4},
    {2, 2, 2, 2, 3, 3, 1, 1, 2, 2, 6, 1, 2},
    {0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 5, 7},
};
static const char* convolution(const test* t, int c, osn_threadpool* pool) {
  const osn_convolution2d_params* p = &conv_cases[c];
  const size_t batch = 2, h = 7, w = 6, ic = p->groups * p->group_input_channels;
  const size_t oc = p->groups * p->group_output_channels, ksize = p->kernel_height * p->kernel_width;
  const window g = WINDOW(p, h, w, p->kernel_height, p->kernel_width);
  const size_t oh = g.oh, ow = g.ow;
  const osn_quantization qx = {1.0f / 128, 128}, qk = {1.0f / 100, 120};
  tensor x = random_tensor(t->type, qx, batch * h * w * ic, -1, 1);
  tensor k = random_tensor(t->type, qk, oc * ksize * p->group_input_channels, -1, 1);
  float *bias_real, *want = floats(batch * oh * ow * oc);
  const void* bias = random_bias(t->type, oc, qx.scale * qk.scale, &bias_real);
  for (size_t i = 0; i < batch * oh * ow * oc; i++) {
    const size_t o = i % oc, ox = i / oc % ow, oy = i / oc / ow % oh, n = i / oc / ow / oh;
    const size_t first_ic = o / p->group_output_channels * p->group_input_channels;
    double acc = bias_real[o];
    size_t iy, ix;
    for (size_t ky = 0; ky < g.kh; ky++)
      for (size_t kx = 0; kx < g.kw; kx++)
        for (size_t j = 0; j < p->group_input_channels && tap(&g, oy, ox, ky, kx, &iy, &ix); j++)
          acc += (double)x.real[((n * h + iy) * w + ix) * ic + first_ic + j] *
                 k.real[((o * g.kh + ky) * g.kw + kx) * p->group_input_channels + j];
    want[i] = (float)acc;
  }
  tensor out = make(t->type, fit_quant(want, batch * oh * ow * oc), batch * oh * ow * oc);
  osn_operator* op = NULL;
  int32_t st = t->type == F32 ? osn_convolution2d_create_f32(p, k.data, bias, -INFINITY, INFINITY, &op)
      : t->type == F16 ? osn_convolution2d_create_f16(p, k.data, bias, -INFINITY, INFINITY, &op)
      : osn_convolution2d_create_qu8(p, qx, qk, k.data, bias, out.q, &op);
  if (st == OSN_STATUS_OK) st = osn_convolution2d_run(op, batch, h, w, x.data, out.data, pool);
  if (op) osn_operator_destroy(op);
  return run_and_compare(st, &out, want, DEFAULT_TOL);
}

/* Direct convolution (NCHW f32 or f16 images, OHWI f16 kernel, NCHW f32 output), its output channels in two calls;
   cases: stride 2 with asymmetric padding over 20 channels (partial vectors), dilated, pointwise over 37 channels. */
static const osn_convolution2d_params direct_cases[] = {
    {1, 0, 0, 2, 3, 3, 2, 2, 1, 1, 1, 20, 9},
    {2, 2, 2, 2, 3, 3, 1, 1, 2, 2, 1, 3, 5},
    {0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 37, 6},
};
static const char* direct_convolution(const test* t, int c, osn_threadpool* pool) {
  const osn_convolution2d_params* p = &direct_cases[c];
  const size_t batch = 2, h = 7, w = 6, ic = p->group_input_channels, oc = p->group_output_channels;
  const window g = WINDOW(p, h, w, p->kernel_height, p->kernel_width);
  const size_t pixels = g.oh * g.ow, split = oc / 2;
  tensor x = random_tensor(t->type, no_quant, batch * ic * h * w, -1, 1);
  tensor k = random_tensor(F16, no_quant, oc * g.kh * g.kw * ic, -1, 1);
  float* bias_real;
  const float* bias = random_bias(F32, oc, 1, &bias_real);
  float* want = floats(batch * oc * pixels);
  for (size_t i = 0; i < batch * oc * pixels; i++) {
    const size_t q = i % pixels, o = i / pixels % oc, n = i / pixels / oc, oy = q / g.ow, ox = q % g.ow;
    double acc = o < split ? bias_real[o] : 0;
    size_t iy, ix;
    for (size_t ky = 0; ky < g.kh; ky++)
      for (size_t kx = 0; kx < g.kw; kx++)
        for (size_t j = 0; j < ic && tap(&g, oy, ox, ky, kx, &iy, &ix); j++)
          acc += (double)x.real[((n * ic + j) * h + iy) * w + ix] * k.real[((o * g.kh + ky) * g.kw + kx) * ic + j];
    want[i] = (float)acc;
  }
  size_t elements = 0;
  int32_t st = osn_direct_convolution_input_size(p, batch, h, w, &elements);
  float* prepared = floats(elements);
  tensor out = make(F32, no_quant, batch * oc * pixels);
  if (st == OSN_STATUS_OK)
    st = t->type == F16 ? osn_direct_convolution_prepare_input_f16(p, batch, h, w, x.data, prepared, pool)
                        : osn_direct_convolution_prepare_input_f32(p, batch, h, w, x.data, prepared, pool);
  if (st == OSN_STATUS_OK)
    st = osn_direct_convolution_f32_f16w(p, batch, h, w, prepared, 0, split, k.data, bias, out.data, pool);
  if (st == OSN_STATUS_OK)
    st = osn_direct_convolution_f32_f16w(p, batch, h, w, prepared, split, oc - split,
        (const uint16_t*) k.data + split * g.kh * g.kw * ic, NULL, out.data, pool);
  return run_and_compare(st, &out, want, DEFAULT_TOL);
}

/* Direct fully connected (f16 weights): rows 13 of 48 channels in rows of 50, 21 outputs written into rows of 25; cases:
   bias, none. */
static const char* direct_fully_connected(const test* t, int c, osn_threadpool* pool) {
  const size_t rows = 13, ic = 48, in_stride = 50, oc = 21, out_stride = 25;
  tensor x = random_tensor(F32, no_quant, rows * in_stride, -1, 1), wt = random_tensor(F16, no_quant, oc * ic, -1, 1);
  float* bias_real;
  const float* bias = c == 0 ? random_bias(F32, oc, 1, &bias_real) : NULL;
  tensor out = make(F32, no_quant, rows * out_stride);
  float* want = floats(rows * out_stride);
  for (size_t r = 0; r < rows; r++)
    for (size_t o = 0; o < out_stride; o++) {
      double acc = 0;
      if (o < oc) {
        acc = bias ? bias_real[o] : 0;
        for (size_t i = 0; i < ic; i++) acc += (double)x.real[r * in_stride + i] * wt.real[o * ic + i];
      } else {
        acc = -1; /* columns past the outputs keep what they held */
        ((float*)out.data)[r * out_stride + o] = -1;
      }
      want[r * out_stride + o] = (float)acc;
    }
  return run_and_compare(osn_direct_fully_connected_f32_f16w(rows, ic, x.data, in_stride, oc, wt.data, bias, out.data,
      out_stride, pool), &out, want, DEFAULT_TOL);
}

/* Broadcasting elementwise; cases: same shape, trailing broadcast, both sides broadcast,
   scalar, rank 6. */
static const struct {
  size_t a_rank, a_shape[OSN_MAX_DIMS], b_rank, b_shape[OSN_MAX_DIMS];
} binary_cases[] = {
    {3, {2, 3, 5}, 3, {2, 3, 5}},
    {3, {2, 3, 5}, 2, {3, 1}},
    {1, {5}, 4, {2, 1, 3, 1}},
    {2, {4, 7}, 0, {0}},
    {6, {2, 1, 2, 1, 3, 2}, 6, {1, 2, 1, 3, 1, 2}},
};
static const char* binary(const test* t, int c, osn_threadpool* pool) {
  const size_t ar = binary_cases[c].a_rank, br = binary_cases[c].b_rank, r = ar > br ? ar : br;
  const size_t *as = binary_cases[c].a_shape, *bs = binary_cases[c].b_shape;
  const osn_quantization qa = {2.0f / 255, 128}, qb = {0.006f, 10};
  tensor a = random_tensor(t->type, qa, numel(ar, as), -1, 1);
  tensor b = random_tensor(t->type, qb, numel(br, bs), 0.5f, 1.5f); /* away from 0 for DIVIDE */
  size_t shape[OSN_MAX_DIMS], a_stride[OSN_MAX_DIMS], b_stride[OSN_MAX_DIMS], sa = 1, sb = 1, n = 1;
  for (size_t d = r; d-- > 0;) { /* align the shapes at the right, as NumPy does */
    const size_t da = d >= r - ar ? as[d - (r - ar)] : 1, db = d >= r - br ? bs[d - (r - br)] : 1;
    shape[d] = da > db ? da : db;
    a_stride[d] = da == 1 ? 0 : sa;
    b_stride[d] = db == 1 ? 0 : sb;
    sa *= da, sb *= db, n *= shape[d];
  }
  float* want = floats(n);
  for (size_t i = 0; i < n; i++) {
    size_t rest = i, ia = 0, ib = 0;
    for (size_t d = r; d-- > 0; rest /= shape[d]) {
      ia += rest % shape[d] * a_stride[d];
      ib += rest % shape[d] * b_stride[d];
    }
    const double x = a.real[ia], y = b.real[ib];
    want[i] = (float)(t->param == OSN_BINARY_ADD ? x + y : t->param == OSN_BINARY_SUBTRACT ? x - y
        : t->param == OSN_BINARY_MULTIPLY ? x * y : x / y);
  }
  tensor out = make(t->type, fit_quant(want, n), n);
  const osn_binary_operation op = (osn_binary_operation)t->param;
  int32_t st = t->type == F32 ? osn_binary_f32(op, ar, as, a.data, br, bs, b.data, out.data, pool)
      : t->type == F16 ? osn_binary_f16(op, ar, as, a.data, br, bs, b.data, out.data, pool)
      : osn_binary_qu8(op, ar, as, a.data, qa, br, bs, b.data, qb, out.data, out.q, pool);
  return run_and_compare(st, &out, want, DEFAULT_TOL);
}

static const char* sigmoid(const test* t, int c, osn_threadpool* pool) {
  (void)c;
  const size_t n = 300;
  const osn_quantization qx = {0.06f, 128};
  tensor x = random_tensor(t->type, qx, n, -8, 8), out = make(t->type, unit_quant, n);
  float* want = floats(n);
  for (size_t i = 0; i < n; i++) want[i] = (float)(1 / (1 + exp(-(double)x.real[i])));
  return run_and_compare(t->type == F32 ? osn_sigmoid_f32(n, x.data, out.data, pool)
      : osn_sigmoid_qu8(n, x.data, qx, out.data, unit_quant, pool), &out, want, DEFAULT_TOL);
}

static const char* softmax(const test* t, int c, osn_threadpool* pool) {
  (void)c;
  const size_t rows = 4, channels = 33;
  const osn_quantization qx = {0.05f, 0};
  tensor x = random_tensor(t->type, qx, rows * channels, 0, 12), out = make(t->type, unit_quant, rows * channels);
  float* want = floats(rows * channels);
  for (size_t r = 0; r < rows; r++) {
    const float* in = x.real + r * channels;
    float top = in[0]; /* a float max: aarch64 gcc 12 -O3 crashes vectorizing a double fmax */
    double sum = 0;
    for (size_t j = 1; j < channels; j++) top = fmaxf(top, in[j]);
    for (size_t j = 0; j < channels; j++) sum += exp(in[j] - top);
    for (size_t j = 0; j < channels; j++) want[r * channels + j] = (float)(exp(in[j] - top) / sum);
  }
  return run_and_compare(t->type == F32 ? osn_softmax_f32(rows, channels, x.data, out.data, pool)
      : osn_softmax_qu8(rows, channels, x.data, qx.scale, out.data, unit_quant, pool), &out, want, DEFAULT_TOL);
}

/* Max pooling; cases: 3x3 stride 2 padded, 2x2 stride 2, 2x2 dilated with asymmetric padding.
   Fields: padding t r b l, pooling h w, stride h w, dilation h w. */
static const osn_pooling2d_params pool_cases[] = {
    {1, 1, 1, 1, 3, 3, 2, 2, 1, 1},
    {0, 0, 0, 0, 2, 2, 2, 2, 1, 1},
    {1, 1, 0, 0, 2, 2, 1, 1, 2, 2},
};
static const char* max_pooling(const test* t, int c, osn_threadpool* pool) {
  const osn_pooling2d_params* p = &pool_cases[c];
  const size_t batch = 2, h = 9, w = 8, ch = 5;
  const window g = WINDOW(p, h, w, p->pooling_height, p->pooling_width);
  const size_t oh = g.oh, ow = g.ow;
  const osn_quantization q = {0.05f, 100};
  tensor x = random_tensor(t->type, q, batch * h * w * ch, -5, 5), out = make(t->type, q, batch * oh * ow * ch);
  float* want = floats(out.n);
  for (size_t i = 0; i < out.n; i++) {
    const size_t j = i % ch, ox = i / ch % ow, oy = i / ch / ow % oh, n = i / ch / ow / oh;
    float m = -INFINITY;
    size_t iy, ix;
    for (size_t ky = 0; ky < g.kh; ky++)
      for (size_t kx = 0; kx < g.kw; kx++)
        if (tap(&g, oy, ox, ky, kx, &iy, &ix)) m = fmaxf(m, x.real[((n * h + iy) * w + ix) * ch + j]);
    want[i] = m;
  }
  return run_and_compare(osn_max_pooling2d((osn_datatype)t->type, p, batch, h, w, ch, x.data, out.data, pool),
                         &out, want, 0);
}

/* Conversions between f32 and t->type: param 0 from f32, 1 to f32. Rounding to f16 must be exact
   (special values included); to qu8 within one step. */
static const char* convert(const test* t, int c, osn_threadpool* pool) {
  (void)c;
  const size_t n = 200;
  const osn_quantization q = {0.02f, 77};
  const float special[] = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.0f, 65520.0f, -1e-7f, 6.1e-5f,
                           2.98e-8f, 2.99e-8f, 1.00048828125f, 1.00146484375f, INFINITY, -INFINITY, NAN};
  tensor in = make(t->param ? t->type : F32, q, n), out = make(t->param ? F32 : t->type, q, n);
  for (size_t i = 0; i < n; i++) {
    if (in.type == F16) { /* every bit pattern, NaNs included */
      ((uint16_t*)in.data)[i] = (uint16_t)rng();
      in.real[i] = get(&in, i);
    } else {
      set(&in, i, t->type == QU8 ? frand(-3, 4)
          : i < sizeof special / sizeof *special ? special[i] : ldexpf(frand(-1, 1), (int)(rng() % 40) - 24));
    }
  }
  int32_t st = t->type == F16 ? (t->param ? osn_convert_f16_to_f32(n, in.data, out.data, pool)
                                          : osn_convert_f32_to_f16(n, in.data, out.data, pool))
      : t->param ? osn_convert_qu8_to_f32(n, in.data, q, out.data, pool)
      : osn_convert_f32_to_qu8(n, in.data, out.data, q, pool);
  return run_and_compare(st, &out, in.real, t->type == F16 ? 0 : t->param ? DEFAULT_TOL : 1);
}

/* Batch matmul, t->param the algorithm; cases vary shapes, OSN_FLAG_TRANSPOSE_B and
   broadcasting (stride 0) of A or B. */
static const struct {
  size_t batch, m, k, n;
  int a_broadcast, b_broadcast;
  uint32_t flags;
} matmul_cases[] = {
    {3, 5, 7, 6, 0, 0, 0},
    {3, 5, 7, 6, 0, 1, OSN_FLAG_TRANSPOSE_B},
    {2, 1, 33, 17, 1, 0, 0},
    {1, 9, 40, 4, 0, 0, OSN_FLAG_TRANSPOSE_B},
    {4, 16, 16, 16, 0, 0, 0},
};
static const char* batch_matmul(const test* t, int c, osn_threadpool* pool) {
  const size_t batch = matmul_cases[c].batch, m = matmul_cases[c].m, k = matmul_cases[c].k, n = matmul_cases[c].n;
  const size_t sa = matmul_cases[c].a_broadcast ? 0 : m * k, sb = matmul_cases[c].b_broadcast ? 0 : k * n;
  const int tb = (matmul_cases[c].flags & OSN_FLAG_TRANSPOSE_B) != 0;
  tensor a = random_tensor(t->type, no_quant, (sa ? batch : 1) * m * k, -1, 1);
  tensor b = random_tensor(t->type, no_quant, (sb ? batch : 1) * k * n, -1, 1);
  tensor out = make(t->type, no_quant, batch * m * n);
  float* want = floats(out.n);
  for (size_t i = 0; i < out.n; i++) {
    const size_t item = i / (m * n), row = i / n % m, col = i % n;
    double acc = 0;
    for (size_t j = 0; j < k; j++)
      acc += (double)a.real[item * sa + row * k + j] * b.real[item * sb + (tb ? col * k + j : j * n + col)];
    want[i] = (float)acc;
  }
  const osn_matmul_algorithm alg = (osn_matmul_algorithm)t->param;
  const uint32_t flags = matmul_cases[c].flags;
  int32_t st = t->type == F32
      ? osn_batch_matmul_f32(batch, m, k, n, a.data, sa, b.data, sb, out.data, m * n, flags, alg, pool)
      : osn_batch_matmul_f16(batch, m, k, n, a.data, sa, b.data, sb, out.data, m * n, flags, alg, pool);
  return run_and_compare(st, &out, want, DEFAULT_TOL);
}

#define ALL_TYPES(name, fn, param, cases) \
  {name, fn, F32, param, cases, 0}, {name, fn, F16, param, cases, 1}, {name, fn, QU8, param, cases, 0}
static const test tests[] = {
    ALL_TYPES("fully_connected_%s", fully_connected, 0, 3),
    ALL_TYPES("conv2d_%s", convolution, 0, 3),
    {"direct_conv2d_%s_input", direct_convolution, F32, 0, 3, 0},
    {"direct_conv2d_%s_input", direct_convolution, F16, 0, 3, 0},
    {"direct_fully_connected_%s", direct_fully_connected, F32, 0, 2, 0},
    ALL_TYPES("max_pooling2d_%s", max_pooling, 0, 3),
    {"binary_add_%s", binary, F32, OSN_BINARY_ADD, 5, 0},
    {"binary_sub_%s", binary, F32, OSN_BINARY_SUBTRACT, 5, 0},
    {"binary_mul_%s", binary, F32, OSN_BINARY_MULTIPLY, 5, 0},
    {"binary_div_%s", binary, F32, OSN_BINARY_DIVIDE, 5, 0},
    {"binary_add_%s", binary, F16, OSN_BINARY_ADD, 5, 1},
    {"binary_mul_%s", binary, F16, OSN_BINARY_MULTIPLY, 5, 1},
    {"binary_add_%s", binary, QU8, OSN_BINARY_ADD, 5, 0},
    {"binary_sub_%s", binary, QU8, OSN_BINARY_SUBTRACT, 5, 0},
    {"binary_mul_%s", binary, QU8, OSN_BINARY_MULTIPLY, 5, 0},
    {"sigmoid_%s", sigmoid, F32, 0, 1, 0},
    {"sigmoid_%s", sigmoid, QU8, 0, 1, 0},
    {"softmax_%s", softmax, F32, 0, 1, 0},
    {"softmax_%s", softmax, QU8, 0, 1, 0},
    {"convert_f32_to_%s", convert, F16, 0, 1, 0},
    {"convert_%s_to_f32", convert, F16, 1, 1, 0},
    {"convert_f32_to_%s", convert, QU8, 0, 1, 0},
    {"convert_%s_to_f32", convert, QU8, 1, 1, 0},
    {"batch_matmul_packed_%s", batch_matmul, F32, OSN_MATMUL_PACKED_GEMM, 5, 0},
    {"batch_matmul_direct_%s", batch_matmul, F32, OSN_MATMUL_DIRECT, 5, 0},
    {"batch_matmul_auto_%s", batch_matmul, F32, OSN_MATMUL_AUTO, 5, 0},
    {"batch_matmul_packed_%s", batch_matmul, F16, OSN_MATMUL_PACKED_GEMM, 5, 1},
    {"batch_matmul_auto_%s", batch_matmul, F16, OSN_MATMUL_AUTO, 5, 1},
};

/* ---- Library-level checks ------------------------------------------------------------------ */

/* Packing a fully connected operator's weights must show in the memory statistics. */
static const char* memory_stats(void) {
  const size_t ic = 128, oc = 64, bytes = ic * oc * sizeof(float);
  int64_t cur0, peak0, cur1, peak1, cur2, peak2;
  osn_operator* op = NULL;
  const char* e;
  if ((e = status_error(osn_reset_peak_bytes())) || (e = status_error(osn_memory_stats(&cur0, &peak0))) ||
      (e = status_error(osn_fully_connected_create_f32(ic, oc, 0, floats(ic * oc), NULL, -INFINITY, INFINITY, 0, &op))) ||
      (e = status_error(osn_memory_stats(&cur1, &peak1))))
    return e;
  if (op) osn_operator_destroy(op);
  if ((e = status_error(osn_memory_stats(&cur2, &peak2)))) return e;
  static char text[200];
  snprintf(text, sizeof text,
           "before/with/after an operator of %zu weight bytes: current %lld/%lld/%lld, peak %lld/%lld/%lld", bytes,
           (long long)cur0, (long long)cur1, (long long)cur2, (long long)peak0, (long long)peak1, (long long)peak2);
  const int64_t packed = (int64_t)bytes;
  const int ok = cur1 - cur0 >= packed && cur2 <= cur1 - packed && peak0 >= cur0 && peak1 >= cur1 && peak2 >= peak1;
  return ok ? NULL : text;
}

static int error_cases;
static const char* first_error;
/* A bad call must fail with a text, not crash or succeed. */
static void expect_error(const char* call, int32_t status) {
  static char text[300];
  const char* message = osn_last_error();
  error_cases++;
  if (first_error || (status != OSN_STATUS_OK && message && *message)) return;
  snprintf(text, sizeof text, "%s: %s", call, status == OSN_STATUS_OK ? "returned OK" : "no osn_last_error() text");
  first_error = text;
}
#define EXPECT_ERROR(call) expect_error(#call, (call))

static const char* error_paths(osn_threadpool* pool) {
  float f[64] = {0};
  uint16_t h[64] = {0};
  uint8_t u[64] = {0};
  uint32_t u32;
  osn_threadpool* tp = NULL;
  osn_operator *op = NULL, *fc = NULL;
  const osn_quantization q = {0.1f, 128}, zp256 = {0.1f, 256}, zp_neg = {0.1f, -1}, scale0 = {0.0f, 0};
  const size_t s3[] = {3}, s4[] = {4}, s7[] = {1, 1, 1, 1, 1, 1, 1};
  const osn_convolution2d_params conv0 = {0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1}; /* groups 0 */
  const osn_pooling2d_params pool0 = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1};              /* pooling 0x0 */
  const char* e = status_error(osn_fully_connected_create_f32(4, 4, 0, f, NULL, -INFINITY, INFINITY, 0, &fc));
  if (e) return e;
  EXPECT_ERROR(osn_capabilities(NULL));
  EXPECT_ERROR(osn_threadpool_create(0, &tp));
  EXPECT_ERROR(osn_threadpool_create(1, NULL));
  EXPECT_ERROR(osn_threadpool_thread_count(NULL, &u32));
  EXPECT_ERROR(osn_fully_connected_create_f32(0, 4, 0, f, NULL, -INFINITY, INFINITY, 0, &op));
  EXPECT_ERROR(osn_fully_connected_create_f32(4, 4, 0, NULL, NULL, -INFINITY, INFINITY, 0, &op));
  EXPECT_ERROR(osn_fully_connected_create_f32(4, 4, 0, f, NULL, -INFINITY, INFINITY, 0, NULL));
  EXPECT_ERROR(osn_fully_connected_create_f32(4, 4, 0, f, NULL, 1.0f, -1.0f, 0, &op));
  EXPECT_ERROR(osn_fully_connected_create_qu8(4, 4, 0, zp256, q, u, NULL, q, 0, &op));
  EXPECT_ERROR(osn_fully_connected_create_qu8(4, 4, 0, q, zp_neg, u, NULL, q, 0, &op));
  EXPECT_ERROR(osn_fully_connected_create_qu8(4, 4, 0, q, q, u, NULL, zp256, 0, &op));
  EXPECT_ERROR(osn_fully_connected_run(NULL, 1, f, f + 16, pool));
  EXPECT_ERROR(osn_fully_connected_run(fc, 1, NULL, f + 16, pool));
  EXPECT_ERROR(osn_fully_connected_run(fc, 1, f, NULL, pool));
  EXPECT_ERROR(osn_convolution2d_run(fc, 1, 2, 2, f, f + 16, pool)); /* wrong operator kind */
  EXPECT_ERROR(osn_convolution2d_create_f32(NULL, f, NULL, -INFINITY, INFINITY, &op));
  EXPECT_ERROR(osn_convolution2d_create_f32(&conv0, f, NULL, -INFINITY, INFINITY, &op));
  EXPECT_ERROR(osn_binary_f32(OSN_BINARY_ADD, 7, s7, f, 1, s3, f, f + 32, pool));
  EXPECT_ERROR(osn_binary_f32(OSN_BINARY_ADD, 1, s3, f, 1, s4, f, f + 32, pool));
  EXPECT_ERROR(osn_binary_f32(OSN_BINARY_ADD, 1, s3, f, 1, s3, NULL, f + 32, pool));
  EXPECT_ERROR(osn_binary_f32((osn_binary_operation)9, 1, s3, f, 1, s3, f, f + 32, pool));
  EXPECT_ERROR(osn_binary_f16(OSN_BINARY_SUBTRACT, 1, s3, h, 1, s3, h, h + 32, pool));
  EXPECT_ERROR(osn_binary_qu8(OSN_BINARY_DIVIDE, 1, s3, u, q, 1, s3, u, q, u + 32, q, pool));
  EXPECT_ERROR(osn_binary_qu8(OSN_BINARY_ADD, 1, s3, u, zp256, 1, s3, u, q, u + 32, q, pool));
  EXPECT_ERROR(osn_sigmoid_f32(4, NULL, f, pool));
  EXPECT_ERROR(osn_sigmoid_qu8(4, u, zp_neg, u + 32, unit_quant, pool));
  EXPECT_ERROR(osn_softmax_f32(2, 0, f, f + 32, pool));
  EXPECT_ERROR(osn_softmax_qu8(2, 4, u, 0.1f, u + 32, q, pool)); /* not the fixed 1/256 encoding */
  EXPECT_ERROR(osn_max_pooling2d(OSN_DATATYPE_F32, &pool0, 1, 2, 2, 1, f, f + 32, pool));
  EXPECT_ERROR(osn_max_pooling2d((osn_datatype)7, &pool_cases[1], 1, 2, 2, 1, f, f + 32, pool));
  EXPECT_ERROR(osn_max_pooling2d(OSN_DATATYPE_F32, NULL, 1, 2, 2, 1, f, f + 32, pool));
  EXPECT_ERROR(osn_convert_f32_to_qu8(4, f, u, zp256, pool));
  EXPECT_ERROR(osn_convert_f32_to_qu8(4, f, u, zp_neg, pool));
  EXPECT_ERROR(osn_convert_qu8_to_f32(4, u, scale0, f, pool));
  EXPECT_ERROR(osn_convert_f32_to_f16(4, f, NULL, pool));
  EXPECT_ERROR(osn_batch_matmul_f32(1, 2, 2, 2, NULL, 4, f, 4, f + 32, 4, 0, OSN_MATMUL_AUTO, pool));
  EXPECT_ERROR(osn_batch_matmul_f32(1, 2, 2, 2, f, 4, f, 4, f + 32, 4, 0, (osn_matmul_algorithm)9, pool));
  EXPECT_ERROR(osn_batch_matmul_f16(1, 2, 2, 2, h, 4, NULL, 4, h + 32, 4, 0, OSN_MATMUL_AUTO, pool));
  osn_operator_destroy(fc);
  return first_error;
}

#if !defined(_WIN32)
#  include <sys/mman.h>
#  include <unistd.h>

/* A guarded file mapping whose file is truncated under it reads zeros past the new end (instead of SIGBUS) and counts
   the fault; the pages still in the file keep their bytes. */
static const char* mapping_guard(void) {
  char path[] = "/tmp/osn_selftest_mapping_XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return "mkstemp failed";
  unlink(path);
  const size_t page = (size_t) sysconf(_SC_PAGESIZE), bytes = 3 * page;
  unsigned char* content = malloc(bytes);
  memset(content, 0x5A, bytes);
  const int written = write(fd, content, bytes) == (ssize_t) bytes;
  free(content);
  if (!written) return "write failed";
  volatile unsigned char* map = mmap(NULL, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) return "mmap failed";
  int32_t guard = -1;
  const char* e = status_error(osn_mapping_guard_add((const void*) map, bytes, &guard));
  int64_t faults = -1;
  if (!e) e = status_error(osn_mapping_guard_faults(guard, &faults));
  if (!e && (faults != 0 || map[bytes - 1] != 0x5A)) e = "a whole file: no fault, its bytes";
  if (!e && ftruncate(fd, (off_t) page) != 0) e = "ftruncate failed";
  if (!e && (map[page] != 0 || map[bytes - 1] != 0)) e = "past the new end: zeros";
  if (!e && map[0] != 0x5A) e = "before the new end: the file's bytes";
  if (!e) e = status_error(osn_mapping_guard_faults(guard, &faults));
  if (!e && faults != 1) e = "one fault counted";
  if (!e) e = status_error(osn_mapping_guard_remove(guard));
  if (!e && osn_mapping_guard_remove(guard) == OSN_STATUS_OK) e = "removing a range twice fails";
  if (!e && osn_mapping_guard_add((const void*) (map + 1), 1, &guard) == OSN_STATUS_OK) e = "an unaligned range is refused";
  munmap((void*) map, bytes);
  close(fd);
  return e;
}
#endif

int main(void) {
  uint32_t caps = 0, threads[2] = {0, 0};
  osn_threadpool* pools[2] = {NULL, NULL};
  char name[64];
  const char* e;

  printf("onnxstream_native selftest, XNNPACK commit %s\n", osn_xnnpack_commit());
  report("initialize", status_error(osn_initialize()), -1);
  report("capabilities", status_error(osn_capabilities(&caps)), -1);
  printf("f16 hardware support: %s\n", (caps & OSN_CAPABILITY_F16) ? "yes" : "no");
  e = status_error(osn_threadpool_create(1, &pools[0]));
  if (!e) e = status_error(osn_threadpool_create(2, &pools[1]));
  if (!e) e = status_error(osn_threadpool_thread_count(pools[0], &threads[0]));
  if (!e) e = status_error(osn_threadpool_thread_count(pools[1], &threads[1]));
  if (!e && (threads[0] != 1 || threads[1] != 2)) e = "pools of 1 and 2 threads report other counts";
  report("threadpool", e, -1);

  for (int p = 0; p < 2 && pools[p]; p++) {
    pool_tag = p ? " [2 threads]" : " [1 thread]";
    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
      const test* t = &tests[i];
      snprintf(name, sizeof name, t->name, type_name[t->type]);
      if (t->needs_f16 && !(caps & OSN_CAPABILITY_F16)) {
        skipped++;
        printf("skip %s%s: skipped: no f16 hardware support\n", name, pool_tag);
        continue;
      }
      int c = 0;
      for (e = NULL; c < t->cases && !e; c++) {
        e = t->run(t, c, pools[p]);
        free_all();
      }
      report(name, e, t->cases > 1 && e ? c - 1 : -1);
    }
  }
  pool_tag = "";
  report("memory_stats", memory_stats(), -1);
  free_all();
#if !defined(_WIN32)
  report("mapping_guard", mapping_guard(), -1);
#endif
  e = error_paths(pools[1]);
  snprintf(name, sizeof name, "error_paths (%d cases)", error_cases);
  report(name, e, -1);
  for (int p = 0; p < 2; p++)
    if (pools[p]) osn_threadpool_destroy(pools[p]);

  printf("selftest: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed == 0 && passed > 0 ? 0 : 1;
}
