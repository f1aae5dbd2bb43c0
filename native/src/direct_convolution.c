/* Direct convolution of float32 images with a float16 kernel, without packing.
   When weights stream from disk, XNNPACK's convolution packs its kernel before every run: the kernel widened to a
   float32 copy, transposed, then packed element by element into a new buffer. For the 1280- and 2560-channel 3x3
   convolutions of a UNet at 8x8 and 16x16 pixels (59 MB float16 kernels, few pixels to reuse them on) that costs
   3-5x the arithmetic. Here the OHWI float16 kernel is read as it is: a few output channels at a time are widened
   into a panel that stays in L1, and each tile of pixels takes dot products over input channels against a
   zero-padded NHWC copy of the input (so every tap of every pixel is a plain run of channels). */
#include <stdlib.h>
#include <string.h>

#include "osn_internal.h"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#  include <immintrin.h>
#  define OSN_DC_X86 1
#endif

/* Channels of the padded input and of a panel chunk are rounded up to this (every variant's vector divides it). */
#define OSN_DIRECT_CHANNEL_ALIGN 16
/* Floats of a task's kernel panel: the DC_NR output channels' slice of one chunk of input channels (20 KB). */
#define OSN_DIRECT_PANEL_FLOATS 5120
/* Output channel tiles per task. */
#define OSN_DIRECT_TILES_PER_TASK 4
/* Pixel tiles per task, and the most channels of a chunk: the input a task reads stays in L2 while a thread goes
   through the output channels (a 3x3 kernel over 240 pixels of a 64-pixel-wide image, 128-channel chunks: about 240 KB;
   240 rows of a fully connected layer, 512-channel chunks: 480 KB). */
#define OSN_DIRECT_TILES_PER_PIXEL_BLOCK 40
#define OSN_DIRECT_MAX_CHUNK 512
/* The most taps a panel chunk of one aligned group of channels holds for 4 output channels. */
#define OSN_DIRECT_MAX_TAPS (OSN_DIRECT_PANEL_FLOATS / (4 * OSN_DIRECT_CHANNEL_ALIGN))

typedef struct dc_problem {
  const float* input;         /* padded NHWC [images][padded_height][padded_width][channel_stride] */
  size_t input_image_stride;
  const uint16_t* kernel;     /* OHWI float16 [outputs][taps][channels] */
  const float* bias;          /* [outputs] or NULL */
  float* output;              /* at the call's first output channel */
  size_t output_image_stride, output_channel_stride, output_pixel_stride;
  size_t outputs, channels, channel_stride, chunk, taps, pixels, output_width, padded_width;
  size_t stride_height, stride_width, block_outputs, block_pixels;
  size_t tap_offsets[OSN_DIRECT_MAX_TAPS];
} dc_problem;

static float osn_half_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t) (h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
  uint32_t bits;
  float value;
  if (exponent == 0) {
    value = (float) mantissa * (1.0f / 16777216.0f);  /* zero or subnormal: mantissa x 2^-24 */
    memcpy(&bits, &value, sizeof bits);
    bits |= sign;
  } else if (exponent == 31) {
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  memcpy(&value, &bits, sizeof value);
  return value;
}

/* ---- Variants ---------------------------------------------------------------------------------------- */

#if defined(OSN_DC_X86)
#  pragma GCC push_options
#  pragma GCC target("avx512f,fma,f16c")
#  define DC_NAME(x) x##_avx512
#  define DC_VL 16
#  define DC_MR 6
#  define DC_NR 4
typedef __m512 dc_vec_avx512;
#  define dc_vec dc_vec_avx512
#  define DC_ZERO() _mm512_setzero_ps()
#  define DC_LOAD(p) _mm512_loadu_ps(p)
#  define DC_FMA(acc, x, w) _mm512_fmadd_ps((x), (w), (acc))
#  define DC_SUM(v) _mm512_reduce_add_ps(v)
#  define DC_WIDEN(d, s, n) \
     for (size_t i_ = 0; i_ < (n); i_ += 16) _mm512_storeu_ps((d) + i_, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*) ((s) + i_))))
#  include "direct_convolution_kernel.inc"
#  pragma GCC pop_options

#  pragma GCC push_options
#  pragma GCC target("avx2,fma,f16c")
#  define DC_NAME(x) x##_avx2
#  define DC_VL 8
#  define DC_MR 4
#  define DC_NR 3
typedef __m256 dc_vec_avx2;
#  define dc_vec dc_vec_avx2
#  define DC_ZERO() _mm256_setzero_ps()
#  define DC_LOAD(p) _mm256_loadu_ps(p)
#  define DC_FMA(acc, x, w) _mm256_fmadd_ps((x), (w), (acc))
static inline float dc_sum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#  define DC_SUM(v) dc_sum_avx2(v)
#  define DC_WIDEN(d, s, n) \
     for (size_t i_ = 0; i_ < (n); i_ += 8) _mm256_storeu_ps((d) + i_, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*) ((s) + i_))))
#  include "direct_convolution_kernel.inc"
#  pragma GCC pop_options
#endif

/* Portable: GCC/Clang vector extensions (NEON on arm64, SSE2 on x86), one float at a time elsewhere. */
#define DC_NAME(x) x##_portable
#define DC_NR 4
#if defined(__GNUC__) || defined(__clang__)
#  define DC_VL 4
#  define OSN_DC_PORTABLE_MR 4
typedef float dc_vec_portable __attribute__((vector_size(16)));
static inline dc_vec_portable dc_load_portable(const float* p) {
  dc_vec_portable v;
  memcpy(&v, p, sizeof v);
  return v;
}
#  define DC_ZERO() ((dc_vec_portable) {0.0f, 0.0f, 0.0f, 0.0f})
#  define DC_LOAD(p) dc_load_portable(p)
#  define DC_SUM(v) ((v)[0] + (v)[1] + (v)[2] + (v)[3])
#else
#  define DC_VL 1
#  define OSN_DC_PORTABLE_MR 2
typedef float dc_vec_portable;
#  define DC_ZERO() 0.0f
#  define DC_LOAD(p) (*(p))
#  define DC_SUM(v) (v)
#endif
#define DC_MR OSN_DC_PORTABLE_MR
#define dc_vec dc_vec_portable
#define DC_FMA(acc, x, w) ((acc) + (x) * (w))
#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#  define DC_WIDEN(d, s, n) for (size_t i_ = 0; i_ < (n); i_++) (d)[i_] = (float) ((const __fp16*) (s))[i_]
#else
#  define DC_WIDEN(d, s, n) for (size_t i_ = 0; i_ < (n); i_++) (d)[i_] = osn_half_to_float((s)[i_])
#endif
#include "direct_convolution_kernel.inc"

/* ---- Dispatch ---------------------------------------------------------------------------------------- */

typedef struct dc_variant {
  void (*task)(void*, size_t, size_t, size_t);
  size_t mr, nr;
} dc_variant;

/* The widest variant this processor runs; OSN_DIRECT_KERNEL=avx2 or portable picks a narrower one (the self-test runs
   each on x86). */
static dc_variant pick_variant(void) {
#if defined(OSN_DC_X86)
  const char* wanted = getenv("OSN_DIRECT_KERNEL");
  const int portable = wanted != NULL && strcmp(wanted, "portable") == 0;
  const int avx2 = wanted != NULL && strcmp(wanted, "avx2") == 0;
  __builtin_cpu_init();
  if (!portable && !avx2 && __builtin_cpu_supports("avx512f")) return (dc_variant) {dc_task_avx512, 6, 4};
  if (!portable && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
    return (dc_variant) {dc_task_avx2, 4, 3};
#endif
  return (dc_variant) {dc_task_portable, OSN_DC_PORTABLE_MR, 4};
}

static dc_variant current_variant(void) {
  static dc_variant variant;
  if (variant.task == NULL) variant = pick_variant();
  return variant;
}

/* Sets the problem's input channel chunk (the panel's budget) and runs its tasks over the pool. */
static void run_problem(dc_problem* p, dc_variant variant, size_t images, osn_threadpool* pool) {
  p->block_outputs = variant.nr * OSN_DIRECT_TILES_PER_TASK;
  p->block_pixels = variant.mr * OSN_DIRECT_TILES_PER_PIXEL_BLOCK;
  p->chunk = OSN_DIRECT_PANEL_FLOATS / (variant.nr * p->taps) / OSN_DIRECT_CHANNEL_ALIGN * OSN_DIRECT_CHANNEL_ALIGN;
  if (p->chunk > OSN_DIRECT_MAX_CHUNK) p->chunk = OSN_DIRECT_MAX_CHUNK;
  pthreadpool_parallelize_3d(osn_pool(pool), variant.task, p, images, (p->pixels + p->block_pixels - 1) / p->block_pixels,
      (p->outputs + p->block_outputs - 1) / p->block_outputs, OSN_POOL_FLAGS);
}

/* Checks the geometry and gives the padded input's sizes and the output's. */
static int32_t check_geometry(const char* name, const osn_convolution2d_params* params, size_t batch, size_t height,
    size_t width, size_t* padded_height, size_t* padded_width, size_t* channel_stride, size_t* output_height,
    size_t* output_width) {
  OSN_CHECK(params != NULL, "%s: null params", name);
  OSN_CHECK(params->groups == 1, "%s: groups must be 1, not %u", name, params->groups);
  OSN_CHECK(params->group_input_channels > 0 && params->group_output_channels > 0, "%s: channel counts must be positive", name);
  OSN_CHECK(params->kernel_height > 0 && params->kernel_width > 0 && params->stride_height > 0 &&
      params->stride_width > 0 && params->dilation_height > 0 && params->dilation_width > 0,
      "%s: kernel, stride and dilation must be positive", name);
  OSN_CHECK((size_t) params->kernel_height * params->kernel_width <= OSN_DIRECT_MAX_TAPS,
      "%s: a %ux%u kernel has more than %d taps", name, params->kernel_height, params->kernel_width, OSN_DIRECT_MAX_TAPS);
  OSN_CHECK(params->input_pixel_stride == 0 && params->output_pixel_stride == 0, "%s: pixel strides must be 0 (dense)", name);
  OSN_CHECK(batch > 0 && height > 0 && width > 0, "%s: batch and image size must be positive", name);
  *padded_height = height + params->padding_top + params->padding_bottom;
  *padded_width = width + params->padding_left + params->padding_right;
  const size_t extent_height = (size_t) params->dilation_height * (params->kernel_height - 1) + 1;
  const size_t extent_width = (size_t) params->dilation_width * (params->kernel_width - 1) + 1;
  OSN_CHECK(*padded_height >= extent_height && *padded_width >= extent_width,
      "%s: the padded %zux%zu image is smaller than the %zux%zu kernel window", name, *padded_height, *padded_width,
      extent_height, extent_width);
  *output_height = (*padded_height - extent_height) / params->stride_height + 1;
  *output_width = (*padded_width - extent_width) / params->stride_width + 1;
  *channel_stride = (params->group_input_channels + OSN_DIRECT_CHANNEL_ALIGN - 1) / OSN_DIRECT_CHANNEL_ALIGN * OSN_DIRECT_CHANNEL_ALIGN;
  return osn_ok();
}

int32_t osn_direct_convolution_input_size(const osn_convolution2d_params* params, size_t batch, size_t height,
    size_t width, size_t* elements_out) {
  OSN_CHECK(elements_out != NULL, "osn_direct_convolution_input_size: null output pointer");
  size_t ph = 0, pw = 0, cs = 0, oh = 0, ow = 0;
  int32_t status = check_geometry("osn_direct_convolution_input_size", params, batch, height, width, &ph, &pw, &cs, &oh, &ow);
  if (status != OSN_STATUS_OK) return status;
  *elements_out = batch * ph * pw * cs;
  return osn_ok();
}

typedef struct pad_context {
  const void* input;
  int float16;  /* the input is float16 (else float32) */
  float* prepared;
  size_t channels, height, width, padded_height, padded_width, channel_stride, top, left;
} pad_context;

/* Padded row `row` of image `image`: zeros, then (inside the image) each channel's pixels of that row. */
static void pad_row(void* opaque, size_t image, size_t row) {
  const pad_context* c = (const pad_context*) opaque;
  float* dst = c->prepared + (image * c->padded_height + row) * c->padded_width * c->channel_stride;
  memset(dst, 0, c->padded_width * c->channel_stride * sizeof(float));
  if (row < c->top || row >= c->top + c->height) return;
  const size_t first = image * c->channels * c->height * c->width + (row - c->top) * c->width;
  dst += c->left * c->channel_stride;
  for (size_t ch = 0; ch < c->channels; ch++) {
    const size_t plane = first + ch * c->height * c->width;
    if (c->float16) {
      const uint16_t* src = (const uint16_t*) c->input + plane;
      for (size_t x = 0; x < c->width; x++) dst[x * c->channel_stride + ch] = osn_half_to_float(src[x]);
    } else {
      const float* src = (const float*) c->input + plane;
      for (size_t x = 0; x < c->width; x++) dst[x * c->channel_stride + ch] = src[x];
    }
  }
}

static int32_t prepare_input(const char* name, const osn_convolution2d_params* params, size_t batch, size_t height,
    size_t width, const void* input, int float16, float* prepared, osn_threadpool* pool) {
  size_t ph = 0, pw = 0, cs = 0, oh = 0, ow = 0;
  int32_t status = check_geometry(name, params, batch, height, width, &ph, &pw, &cs, &oh, &ow);
  if (status != OSN_STATUS_OK) return status;
  OSN_CHECK(input != NULL && prepared != NULL && pool != NULL, "%s: null input, output or thread pool", name);
  pad_context context = {
    .input = input, .float16 = float16, .prepared = prepared, .channels = params->group_input_channels, .height = height,
    .width = width, .padded_height = ph, .padded_width = pw, .channel_stride = cs, .top = params->padding_top,
    .left = params->padding_left,
  };
  pthreadpool_parallelize_2d(osn_pool(pool), pad_row, &context, batch, ph, OSN_POOL_FLAGS);
  return osn_ok();
}

int32_t osn_direct_convolution_prepare_input_f32(const osn_convolution2d_params* params, size_t batch, size_t height,
    size_t width, const float* input, float* prepared, osn_threadpool* pool) {
  return prepare_input("osn_direct_convolution_prepare_input_f32", params, batch, height, width, input, 0, prepared, pool);
}

int32_t osn_direct_convolution_prepare_input_f16(const osn_convolution2d_params* params, size_t batch, size_t height,
    size_t width, const uint16_t* input, float* prepared, osn_threadpool* pool) {
  return prepare_input("osn_direct_convolution_prepare_input_f16", params, batch, height, width, input, 1, prepared, pool);
}

int32_t osn_direct_convolution_f32_f16w(const osn_convolution2d_params* params, size_t batch, size_t height,
    size_t width, const float* prepared, size_t output_offset, size_t outputs, const uint16_t* kernel,
    const float* bias, float* output, osn_threadpool* pool) {
  static const char name[] = "osn_direct_convolution_f32_f16w";
  size_t ph = 0, pw = 0, cs = 0, oh = 0, ow = 0;
  int32_t status = check_geometry(name, params, batch, height, width, &ph, &pw, &cs, &oh, &ow);
  if (status != OSN_STATUS_OK) return status;
  OSN_CHECK(prepared != NULL && kernel != NULL && output != NULL && pool != NULL,
      "%s: null input, kernel, output or thread pool", name);
  OSN_CHECK(outputs > 0 && output_offset + outputs <= params->group_output_channels,
      "%s: output channels [%zu, %zu) are outside the %zu of the convolution", name, output_offset,
      output_offset + outputs, params->group_output_channels);
  const dc_variant variant = current_variant();
  dc_problem p = {
    .input = prepared, .input_image_stride = ph * pw * cs, .kernel = kernel, .bias = bias,
    .output_image_stride = params->group_output_channels * oh * ow, .output_channel_stride = oh * ow,
    .output_pixel_stride = 1, .outputs = outputs,
    .channels = params->group_input_channels, .channel_stride = cs, .taps = (size_t) params->kernel_height * params->kernel_width,
    .pixels = oh * ow, .output_width = ow, .padded_width = pw, .stride_height = params->stride_height,
    .stride_width = params->stride_width,
  };
  p.output = output + output_offset * p.pixels;
  for (size_t ky = 0; ky < params->kernel_height; ky++)
    for (size_t kx = 0; kx < params->kernel_width; kx++)
      p.tap_offsets[ky * params->kernel_width + kx] = (ky * params->dilation_height * pw + kx * params->dilation_width) * cs;
  run_problem(&p, variant, batch, pool);
  return osn_ok();
}

int32_t osn_direct_fully_connected_f32_f16w(size_t rows, size_t input_channels, const float* input, size_t input_stride,
    size_t outputs, const uint16_t* weights, const float* bias, float* output, size_t output_stride, osn_threadpool* pool) {
  static const char name[] = "osn_direct_fully_connected_f32_f16w";
  OSN_CHECK(input != NULL && weights != NULL && output != NULL && pool != NULL,
      "%s: null input, weights, output or thread pool", name);
  OSN_CHECK(rows > 0 && outputs > 0, "%s: rows and outputs must be positive", name);
  OSN_CHECK(input_channels > 0 && input_channels % OSN_DIRECT_CHANNEL_ALIGN == 0,
      "%s: input channels (%zu) must be a positive multiple of %d", name, input_channels, OSN_DIRECT_CHANNEL_ALIGN);
  OSN_CHECK(input_stride >= input_channels && output_stride >= outputs,
      "%s: row strides (input %zu, output %zu) below the row lengths (%zu, %zu)", name, input_stride, output_stride,
      input_channels, outputs);
  const dc_variant variant = current_variant();
  /* One image whose pixels are the rows: a 1x1 convolution with row strides. */
  dc_problem p = {
    .input = input, .kernel = weights, .bias = bias, .output = output, .output_channel_stride = 1,
    .output_pixel_stride = output_stride, .outputs = outputs, .channels = input_channels, .channel_stride = input_stride,
    .taps = 1, .pixels = rows, .output_width = rows, .padded_width = rows, .stride_height = 1, .stride_width = 1,
  };
  run_problem(&p, variant, 1, pool);
  return osn_ok();
}
