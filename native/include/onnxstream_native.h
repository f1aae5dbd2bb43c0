/*
 * onnxstream_native: a thin C shim over XNNPACK (pinned to upstream commit ae108ef).
 *
 * Plain C types only: opaque handles, sizes, pointers and enums. Every function but the two
 * string getters returns an int32_t osn_status; on failure, osn_last_error() returns a text for
 * the calling thread that says what was wrong. C# owns all logic; this layer validates arguments,
 * forwards to XNNPACK and adds the one kernel XNNPACK lacks (batched matmul of two activations).
 *
 * Buffers: XNNPACK may read up to OSN_EXTRA_BYTES past the end of every input buffer, so callers
 * must over-allocate inputs by that much. Tensors are dense and row-major; images are NHWC.
 * FP16 data is IEEE binary16 stored in uint16_t. QU8 is uint8 with real = (q - zero_point) * scale.
 */
#ifndef ONNXSTREAM_NATIVE_H
#define ONNXSTREAM_NATIVE_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(ONNXSTREAM_NATIVE_BUILD)
#    define OSN_API __declspec(dllexport)
#  else
#    define OSN_API __declspec(dllimport)
#  endif
#else
#  define OSN_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Fixed numbers of the interface. */
typedef enum osn_limits {
  /* Bump when a declaration in this header changes. */
  OSN_ABI_VERSION = 4,
  /* Bytes XNNPACK may read past the end of an input buffer. */
  OSN_EXTRA_BYTES = 16,
  /* Most dimensions a broadcasting elementwise operand may have. */
  OSN_MAX_DIMS = 6,
  /* Blocks of at least this many bytes are worth osn_block_allocate. */
  OSN_LARGE_BLOCK_BYTES = 262144,
  /* Bytes of freed large blocks kept for reuse unless osn_block_cache_set_limit says otherwise. */
  OSN_DEFAULT_BLOCK_CACHE_BYTES = 8388608,
  /* File mappings osn_mapping_guard_add can guard at once. */
  OSN_MAPPING_GUARDS = 16384,
} osn_limits;

typedef enum osn_status {
  OSN_STATUS_OK = 0,
  OSN_STATUS_INVALID_ARGUMENT = 1,
  OSN_STATUS_UNSUPPORTED = 2,
  OSN_STATUS_UNSUPPORTED_HARDWARE = 3,
  OSN_STATUS_OUT_OF_MEMORY = 4,
  OSN_STATUS_UNINITIALIZED = 5,
  OSN_STATUS_INTERNAL_ERROR = 6,
} osn_status;

typedef enum osn_datatype {
  OSN_DATATYPE_F32 = 0,
  OSN_DATATYPE_F16 = 1,
  OSN_DATATYPE_QU8 = 2,
} osn_datatype;

typedef enum osn_binary_operation {
  OSN_BINARY_ADD = 0,
  OSN_BINARY_SUBTRACT = 1,
  OSN_BINARY_MULTIPLY = 2,
  OSN_BINARY_DIVIDE = 3,
} osn_binary_operation;

typedef enum osn_flag {
  /* Fully connected: weights are [input_channels][output_channels] (ONNX MatMul's B) instead of
     XNNPACK's [output_channels][input_channels] (Gemm with transB, torch Linear). */
  OSN_FLAG_TRANSPOSE_WEIGHTS = 1,
  /* Batch matmul: B is [n][k] instead of [k][n]. */
  OSN_FLAG_TRANSPOSE_B = 2,
} osn_flag;

/* Bits of osn_capabilities(). */
typedef enum osn_capability {
  /* XNNPACK's f16 kernels run here (x86 with AVX2, arm64 with FP16 arithmetic). */
  OSN_CAPABILITY_F16 = 1,
} osn_capability;

/* How osn_batch_matmul_* computes. */
typedef enum osn_matmul_algorithm {
  /* Pick by shape: DIRECT when A has few rows per thread (packing B would cost more than it saves). */
  OSN_MATMUL_AUTO = 0,
  /* Per batch item, pack B into an XNNPACK fully-connected operator and run A through it. */
  OSN_MATMUL_PACKED_GEMM = 1,
  /* The shim's own kernel, parallel over rows; f32 only. */
  OSN_MATMUL_DIRECT = 2,
} osn_matmul_algorithm;

/* Asymmetric uint8 quantization: real = (q - zero_point) * scale. zero_point is 0..255. */
typedef struct osn_quantization {
  float scale;
  int32_t zero_point;
} osn_quantization;

/* 2-D convolution geometry. Kernel layout is OHWI: [groups * group_output_channels][kernel_height]
   [kernel_width][group_input_channels]. Depthwise is groups == channels with 1 input channel each. */
typedef struct osn_convolution2d_params {
  uint32_t padding_top;
  uint32_t padding_right;
  uint32_t padding_bottom;
  uint32_t padding_left;
  uint32_t kernel_height;
  uint32_t kernel_width;
  uint32_t stride_height;
  uint32_t stride_width;
  uint32_t dilation_height;
  uint32_t dilation_width;
  uint32_t groups;
  size_t group_input_channels;
  size_t group_output_channels;
  /* Elements between consecutive pixels of the input and of the output; 0: dense (the channel count).
     A larger output stride lets a convolution of some output channels write them into a wider image. */
  size_t input_pixel_stride;
  size_t output_pixel_stride;
} osn_convolution2d_params;

/* 2-D pooling geometry. */
typedef struct osn_pooling2d_params {
  uint32_t padding_top;
  uint32_t padding_right;
  uint32_t padding_bottom;
  uint32_t padding_left;
  uint32_t pooling_height;
  uint32_t pooling_width;
  uint32_t stride_height;
  uint32_t stride_width;
  uint32_t dilation_height;
  uint32_t dilation_width;
} osn_pooling2d_params;

typedef struct osn_threadpool osn_threadpool;
typedef struct osn_operator osn_operator;

/* ---- Library ---------------------------------------------------------------------------- */

/* The last error text of the calling thread ("" if none). Valid until the thread's next call. */
OSN_API const char* osn_last_error(void);

/* The XNNPACK commit this library was built against (e.g. "ae108ef"). */
OSN_API const char* osn_xnnpack_commit(void);

/* Initializes XNNPACK once per process; later calls do nothing. Every other call does it too. */
OSN_API int32_t osn_initialize(void);

/* Writes OSN_CAPABILITY_* bits of this machine to *capabilities. */
OSN_API int32_t osn_capabilities(uint32_t* capabilities);

/* Bytes XNNPACK holds now (packed weights, operator state) and the most it held since the last
   osn_reset_peak_bytes(). */
OSN_API int32_t osn_memory_stats(int64_t* current_bytes, int64_t* peak_bytes);
OSN_API int32_t osn_reset_peak_bytes(void);

/* ---- Large blocks ------------------------------------------------------------------------ */

/* Blocks for tensors and packed weights of at least OSN_LARGE_BLOCK_BYTES, mapped from the system and
   given back to it when freed (so freed weights leave the resident set, which the C heap does not
   promise), except for a bounded cache of freed blocks that serves later requests of the same size
   without new page faults. *block_out is page-aligned; *zeroed_out is 1 when it is freshly mapped
   (all zero), 0 when it comes from the cache (old contents). bytes is the size passed to free. */
OSN_API int32_t osn_block_allocate(size_t bytes, void** block_out, int32_t* zeroed_out);
OSN_API int32_t osn_block_free(void* block, size_t bytes);
/* Bytes of freed blocks the cache may hold (default OSN_DEFAULT_BLOCK_CACHE_BYTES); 0 unmaps at once. */
OSN_API int32_t osn_block_cache_set_limit(size_t bytes);

/* ---- Guarded file mappings ---------------------------------------------------------------- */

/* A file mapping faults (SIGBUS, which ends the process) when a page past the file's end is read: the file was
   truncated while mapped. Registers [address, address + bytes), address page-aligned (at most OSN_MAPPING_GUARDS ranges
   at once; the first call installs a SIGBUS handler that passes other faults to the handler installed before it): a
   fault in the range then maps zero pages over the rest of the range and the read goes on, reading zeros. The caller
   must check osn_mapping_guard_faults after the reads and fail their work. *guard_out identifies the range. Windows
   cannot truncate a mapped file: there nothing is registered and no fault is ever counted. */
OSN_API int32_t osn_mapping_guard_add(const void* address, size_t bytes, int32_t* guard_out);
/* Forgets a range (before it is unmapped). */
OSN_API int32_t osn_mapping_guard_remove(int32_t guard);
/* How many faults the range has had (0 while its file is whole). */
OSN_API int32_t osn_mapping_guard_faults(int32_t guard, int64_t* faults_out);

/* ---- Thread pool ------------------------------------------------------------------------ */

/* threads >= 1. A pool of 1 runs everything on the calling thread. */
OSN_API int32_t osn_threadpool_create(uint32_t threads, osn_threadpool** pool_out);
OSN_API int32_t osn_threadpool_thread_count(osn_threadpool* pool, uint32_t* threads_out);
OSN_API int32_t osn_threadpool_destroy(osn_threadpool* pool);

/* ---- Prepared operators (weights packed once, run many times) ------------------------------ */

OSN_API int32_t osn_operator_destroy(osn_operator* op);

/* Fully connected: output[batch][output_channels] = input[batch][input_channels] x W^T + bias,
   clamped to [output_min, output_max]. bias may be NULL. Output rows are output_stride elements apart
   (0: output_channels), so an operator of some output channels can write them into wider rows. The
   weights are copied (packed): the caller may free them after this returns. */
OSN_API int32_t osn_fully_connected_create_f32(size_t input_channels, size_t output_channels,
    size_t output_stride, const float* weights, const float* bias, float output_min, float output_max,
    uint32_t flags, osn_operator** op_out);
OSN_API int32_t osn_fully_connected_create_f16(size_t input_channels, size_t output_channels,
    size_t output_stride, const uint16_t* weights, const uint16_t* bias, float output_min, float output_max,
    uint32_t flags, osn_operator** op_out);
/* bias is int32 in units of input.scale * weights_quantization.scale. */
OSN_API int32_t osn_fully_connected_create_qu8(size_t input_channels, size_t output_channels,
    size_t output_stride, osn_quantization input, osn_quantization weights_quantization, const uint8_t* weights,
    const int32_t* bias, osn_quantization output, uint32_t flags, osn_operator** op_out);
/* input and output are of the operator's data type. */
OSN_API int32_t osn_fully_connected_run(osn_operator* op, size_t batch_size, const void* input,
    void* output, osn_threadpool* pool);

/* Convolution, NHWC. bias may be NULL. Output height = (H + pad_top + pad_bottom -
   dilation*(kernel-1) - 1) / stride + 1, likewise width. Kernel and bias are copied (packed). */
OSN_API int32_t osn_convolution2d_create_f32(const osn_convolution2d_params* params,
    const float* kernel, const float* bias, float output_min, float output_max, osn_operator** op_out);
OSN_API int32_t osn_convolution2d_create_f16(const osn_convolution2d_params* params,
    const uint16_t* kernel, const uint16_t* bias, float output_min, float output_max,
    osn_operator** op_out);
OSN_API int32_t osn_convolution2d_create_qu8(const osn_convolution2d_params* params,
    osn_quantization input, osn_quantization kernel_quantization, const uint8_t* kernel,
    const int32_t* bias, osn_quantization output, osn_operator** op_out);
OSN_API int32_t osn_convolution2d_run(osn_operator* op, size_t batch_size, size_t input_height,
    size_t input_width, const void* input, void* output, osn_threadpool* pool);

/* ---- Stateless kernels -------------------------------------------------------------------- */

/* output = a (op) b with NumPy broadcasting; ranks 0..OSN_MAX_DIMS (rank 0 = scalar, shape may be
   NULL). The output has the broadcast shape. f16 supports ADD and MULTIPLY; qu8 supports ADD,
   SUBTRACT and MULTIPLY (the pinned XNNPACK's kernels). */
OSN_API int32_t osn_binary_f32(osn_binary_operation operation, size_t a_rank, const size_t* a_shape,
    const float* a, size_t b_rank, const size_t* b_shape, const float* b, float* output,
    osn_threadpool* pool);
OSN_API int32_t osn_binary_f16(osn_binary_operation operation, size_t a_rank, const size_t* a_shape,
    const uint16_t* a, size_t b_rank, const size_t* b_shape, const uint16_t* b, uint16_t* output,
    osn_threadpool* pool);
OSN_API int32_t osn_binary_qu8(osn_binary_operation operation, size_t a_rank, const size_t* a_shape,
    const uint8_t* a, osn_quantization a_quantization, size_t b_rank, const size_t* b_shape,
    const uint8_t* b, osn_quantization b_quantization, uint8_t* output,
    osn_quantization output_quantization, osn_threadpool* pool);

/* Sigmoid of `count` contiguous elements. The qu8 output must use scale 1/256 and zero point 0, as
   XNNPACK's qu8 sigmoid requires. */
OSN_API int32_t osn_sigmoid_f32(size_t count, const float* input, float* output, osn_threadpool* pool);
OSN_API int32_t osn_sigmoid_qu8(size_t count, const uint8_t* input, osn_quantization input_quantization,
    uint8_t* output, osn_quantization output_quantization, osn_threadpool* pool);

/* Softmax over the innermost axis of a [rows][channels] tensor. The qu8 output must use
   scale 1/256 and zero point 0 (XNNPACK's fixed output encoding). */
OSN_API int32_t osn_softmax_f32(size_t rows, size_t channels, const float* input, float* output,
    osn_threadpool* pool);
OSN_API int32_t osn_softmax_qu8(size_t rows, size_t channels, const uint8_t* input,
    float input_scale, uint8_t* output, osn_quantization output_quantization, osn_threadpool* pool);

/* Max pooling, NHWC, of f32, f16 or qu8 data (qu8 output keeps the input's quantization). */
OSN_API int32_t osn_max_pooling2d(osn_datatype datatype, const osn_pooling2d_params* params,
    size_t batch_size, size_t input_height, size_t input_width, size_t channels, const void* input,
    void* output, osn_threadpool* pool);

OSN_API int32_t osn_convert_f32_to_f16(size_t count, const float* input, uint16_t* output,
    osn_threadpool* pool);
OSN_API int32_t osn_convert_f16_to_f32(size_t count, const uint16_t* input, float* output,
    osn_threadpool* pool);
OSN_API int32_t osn_convert_f32_to_qu8(size_t count, const float* input, uint8_t* output,
    osn_quantization output_quantization, osn_threadpool* pool);
OSN_API int32_t osn_convert_qu8_to_f32(size_t count, const uint8_t* input,
    osn_quantization input_quantization, float* output, osn_threadpool* pool);

/* For each of `batch` matrices of rows x cols elements of `element_size` bytes (1, 2, 4 or 8): writes
   its transpose (cols x rows) to output. Source matrix i starts at input + i*input_batch_stride
   (elements; 0: rows*cols, dense), so a block of columns of wider rows is gathered as it is
   transposed; the output is dense. NCHW -> NHWC is batch N, rows C, cols H*W. */
OSN_API int32_t osn_transpose(size_t element_size, size_t batch, size_t rows, size_t cols, const void* input,
    size_t input_batch_stride, void* output, osn_threadpool* pool);

/* Direct convolution: float32 (or float16, widened as they are copied) NCHW images, a float16 OHWI kernel used as it is (no packing, no widened copy),
   float32 NCHW output. For streamed kernels that are large against the image (few pixels to reuse each weight on).
   params: groups 1, dense pixel strides, at most 80 taps (kernel_height x kernel_width). First the input is copied,
   zero-padded, into a buffer of osn_direct_convolution_input_size elements (prepare_input); then each call computes
   output channels [output_offset, output_offset + outputs) of `output` [batch][group_output_channels][out_h][out_w]
   from those channels' kernel rows `kernel` [outputs][kernel_height][kernel_width][group_input_channels] and bias
   [outputs] (NULL: none). */
OSN_API int32_t osn_direct_convolution_input_size(const osn_convolution2d_params* params, size_t batch, size_t height,
    size_t width, size_t* elements_out);
OSN_API int32_t osn_direct_convolution_prepare_input_f32(const osn_convolution2d_params* params, size_t batch,
    size_t height, size_t width, const float* input, float* prepared, osn_threadpool* pool);
OSN_API int32_t osn_direct_convolution_prepare_input_f16(const osn_convolution2d_params* params, size_t batch,
    size_t height, size_t width, const uint16_t* input, float* prepared, osn_threadpool* pool);
OSN_API int32_t osn_direct_convolution_f32_f16w(const osn_convolution2d_params* params, size_t batch, size_t height,
    size_t width, const float* prepared, size_t output_offset, size_t outputs, const uint16_t* kernel,
    const float* bias, float* output, osn_threadpool* pool);

/* The same kernel as a fully connected layer: output[r][o] = bias[o] + sum_i input[r][i] * weights[o][i] for r < rows,
   o < outputs; rows start input_stride and output_stride elements apart (so a call may fill some columns of a wider
   output). weights: float16 [outputs][input_channels]; input_channels a multiple of 16; bias NULL: none. */
OSN_API int32_t osn_direct_fully_connected_f32_f16w(size_t rows, size_t input_channels, const float* input,
    size_t input_stride, size_t outputs, const uint16_t* weights, const float* bias, float* output, size_t output_stride,
    osn_threadpool* pool);

/* C[i] = A[i] x B[i] for i < batch: A[i] is [m][k], B[i] is [k][n] ([n][k] with
   OSN_FLAG_TRANSPOSE_B), C[i] is [m][n]. Item i starts at a + i*a_batch_stride (elements), likewise
   b and c; a stride of 0 broadcasts one matrix over the batch. */
OSN_API int32_t osn_batch_matmul_f32(size_t batch, size_t m, size_t k, size_t n, const float* a,
    size_t a_batch_stride, const float* b, size_t b_batch_stride, float* c, size_t c_batch_stride,
    uint32_t flags, osn_matmul_algorithm algorithm, osn_threadpool* pool);
OSN_API int32_t osn_batch_matmul_f16(size_t batch, size_t m, size_t k, size_t n, const uint16_t* a,
    size_t a_batch_stride, const uint16_t* b, size_t b_batch_stride, uint16_t* c,
    size_t c_batch_stride, uint32_t flags, osn_matmul_algorithm algorithm, osn_threadpool* pool);

#ifdef __cplusplus
}
#endif

#endif /* ONNXSTREAM_NATIVE_H */
