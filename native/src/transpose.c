/* Batched matrix transposes (NCHW <-> NHWC, OIHW -> OHWI): square tiles spread over the thread pool, each
   transposed in 4x4 (32-bit) or 8x8 (16-bit) register blocks where SSE2 is available. */
#include <string.h>

#include "osn_internal.h"

#if defined(__SSE2__) || defined(_M_X64)
#  include <emmintrin.h>
#  define OSN_TRANSPOSE_SSE2 1
#endif

/* Tile side, in elements: a tile's rows and its transposed rows stay in L1. */
#define OSN_TRANSPOSE_TILE 32

typedef struct transpose_context {
  const char* input;
  char* output;
  size_t element_size;
  size_t rows;
  size_t cols;
  size_t input_batch_stride;
} transpose_context;

/* out[c * out_stride + r] = in[r * in_stride + c] for r < rows, c < cols. */
#define SCALAR_TILE(type) \
  static void tile_##type(const type* in, size_t in_stride, type* out, size_t out_stride, size_t rows, \
      size_t cols, size_t r) { \
    for (; r < rows; r++) \
      for (size_t c = 0; c < cols; c++) out[c * out_stride + r] = in[r * in_stride + c]; \
  }
SCALAR_TILE(uint8_t)
SCALAR_TILE(uint64_t)

static void tile_uint32_t(const uint32_t* in, size_t in_stride, uint32_t* out, size_t out_stride, size_t rows,
    size_t cols) {
  size_t r = 0;
#if defined(OSN_TRANSPOSE_SSE2)
  for (; r + 4 <= rows; r += 4) {
    size_t c = 0;
    for (; c + 4 <= cols; c += 4) {
      __m128 a = _mm_loadu_ps((const float*) (in + r * in_stride + c));
      __m128 b = _mm_loadu_ps((const float*) (in + (r + 1) * in_stride + c));
      __m128 d = _mm_loadu_ps((const float*) (in + (r + 2) * in_stride + c));
      __m128 e = _mm_loadu_ps((const float*) (in + (r + 3) * in_stride + c));
      _MM_TRANSPOSE4_PS(a, b, d, e);
      _mm_storeu_ps((float*) (out + c * out_stride + r), a);
      _mm_storeu_ps((float*) (out + (c + 1) * out_stride + r), b);
      _mm_storeu_ps((float*) (out + (c + 2) * out_stride + r), d);
      _mm_storeu_ps((float*) (out + (c + 3) * out_stride + r), e);
    }
    for (; c < cols; c++)
      for (size_t k = 0; k < 4; k++) out[c * out_stride + r + k] = in[(r + k) * in_stride + c];
  }
#endif
  for (; r < rows; r++)
    for (size_t c = 0; c < cols; c++) out[c * out_stride + r] = in[r * in_stride + c];
}

static void tile_uint16_t(const uint16_t* in, size_t in_stride, uint16_t* out, size_t out_stride, size_t rows,
    size_t cols) {
  size_t r = 0;
#if defined(OSN_TRANSPOSE_SSE2)
  for (; r + 8 <= rows; r += 8) {
    size_t c = 0;
    for (; c + 8 <= cols; c += 8) {
      __m128i x[8], t[8], u[8];
      for (int k = 0; k < 8; k++) x[k] = _mm_loadu_si128((const __m128i*) (in + (r + k) * in_stride + c));
      for (int k = 0; k < 4; k++) {
        t[2 * k] = _mm_unpacklo_epi16(x[2 * k], x[2 * k + 1]);
        t[2 * k + 1] = _mm_unpackhi_epi16(x[2 * k], x[2 * k + 1]);
      }
      /* t: rows (0,1) interleaved, cols 0-3 then 4-7; likewise rows (2,3), (4,5), (6,7). */
      u[0] = _mm_unpacklo_epi32(t[0], t[2]);
      u[1] = _mm_unpackhi_epi32(t[0], t[2]);
      u[2] = _mm_unpacklo_epi32(t[1], t[3]);
      u[3] = _mm_unpackhi_epi32(t[1], t[3]);
      u[4] = _mm_unpacklo_epi32(t[4], t[6]);
      u[5] = _mm_unpackhi_epi32(t[4], t[6]);
      u[6] = _mm_unpacklo_epi32(t[5], t[7]);
      u[7] = _mm_unpackhi_epi32(t[5], t[7]);
      /* u[k] (k < 4): rows 0-3 of cols 2k, 2k+1; u[k + 4]: rows 4-7 of the same cols. */
      for (int k = 0; k < 4; k++) {
        _mm_storeu_si128((__m128i*) (out + (c + 2 * k) * out_stride + r), _mm_unpacklo_epi64(u[k], u[k + 4]));
        _mm_storeu_si128((__m128i*) (out + (c + 2 * k + 1) * out_stride + r), _mm_unpackhi_epi64(u[k], u[k + 4]));
      }
    }
    for (; c < cols; c++)
      for (size_t k = 0; k < 8; k++) out[c * out_stride + r + k] = in[(r + k) * in_stride + c];
  }
#endif
  for (; r < rows; r++)
    for (size_t c = 0; c < cols; c++) out[c * out_stride + r] = in[r * in_stride + c];
}

static void transpose_tile(void* opaque, size_t batch_index, size_t row, size_t col, size_t tile_rows,
    size_t tile_cols) {
  const transpose_context* t = (const transpose_context*) opaque;
  const size_t size = t->element_size;
  const char* in = t->input + (batch_index * t->input_batch_stride + row * t->cols + col) * size;
  char* out = t->output + (batch_index * t->rows * t->cols + col * t->rows + row) * size;
  switch (size) {
    case 1: tile_uint8_t((const uint8_t*) in, t->cols, (uint8_t*) out, t->rows, tile_rows, tile_cols, 0); break;
    case 2: tile_uint16_t((const uint16_t*) in, t->cols, (uint16_t*) out, t->rows, tile_rows, tile_cols); break;
    case 4: tile_uint32_t((const uint32_t*) in, t->cols, (uint32_t*) out, t->rows, tile_rows, tile_cols); break;
    default: tile_uint64_t((const uint64_t*) in, t->cols, (uint64_t*) out, t->rows, tile_rows, tile_cols, 0); break;
  }
}

int32_t osn_transpose(size_t element_size, size_t batch, size_t rows, size_t cols, const void* input,
    size_t input_batch_stride, void* output, osn_threadpool* pool) {
  OSN_CHECK(element_size == 1 || element_size == 2 || element_size == 4 || element_size == 8,
      "osn_transpose: element size %zu must be 1, 2, 4 or 8", element_size);
  OSN_CHECK(pool != NULL, "osn_transpose: null thread pool");
  const size_t count = batch * rows * cols;
  if (count == 0) return osn_ok();
  OSN_CHECK(input != NULL && output != NULL, "osn_transpose: null input or output");
  if (input_batch_stride == 0) input_batch_stride = rows * cols;
  OSN_CHECK(input_batch_stride >= rows * cols, "osn_transpose: input batch stride %zu is below a matrix's %zu elements",
      input_batch_stride, rows * cols);
  if ((rows == 1 || cols == 1) && input_batch_stride == rows * cols) {
    memcpy(output, input, count * element_size);
    return osn_ok();
  }
  transpose_context context = {
    .input = (const char*) input, .output = (char*) output, .element_size = element_size,
    .rows = rows, .cols = cols, .input_batch_stride = input_batch_stride,
  };
  pthreadpool_parallelize_3d_tile_2d(osn_pool(pool), transpose_tile, &context, batch, rows, cols,
      OSN_TRANSPOSE_TILE, OSN_TRANSPOSE_TILE, OSN_POOL_FLAGS);
  return osn_ok();
}
