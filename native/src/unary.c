/* Sigmoid, Softmax and type conversions (one-shot XNNPACK nc operators over contiguous data). */
#include <stdio.h>

#include "osn_internal.h"

static int32_t check_buffers(const char* name, size_t count, const void* input, const void* output,
    osn_threadpool* pool) {
  OSN_CHECK(pool != NULL, "%s: null thread pool", name);
  OSN_CHECK(count == 0 || (input != NULL && output != NULL), "%s: null input or output", name);
  return osn_ensure_initialized();
}

/* Runs a one-element-per-row unary operator over `count` contiguous elements (XNNPACK treats
   contiguous rows as one flat range, so this is not per-element overhead). */
#define RUN_UNARY(name, create_expr, setup_fn) \
  do { \
    int32_t s = check_buffers(name, count, input, output, pool); \
    if (s != OSN_STATUS_OK || count == 0) return s == OSN_STATUS_OK ? osn_ok() : s; \
    xnn_operator_t op = NULL; \
    OSN_CHECK_XNN(create_expr, name); \
    return osn_run_and_delete(op, setup_fn(op, count, input, output, osn_pool(pool)), name, osn_pool(pool)); \
  } while (0)

int32_t osn_sigmoid_f32(size_t count, const float* input, float* output, osn_threadpool* pool) {
  RUN_UNARY("sigmoid f32", xnn_create_sigmoid_nc_f32(1, 1, 1, OSN_XNN_FLAGS, &op), xnn_setup_sigmoid_nc_f32);
}

int32_t osn_sigmoid_qu8(size_t count, const uint8_t* input, osn_quantization input_quantization,
    uint8_t* output, osn_quantization output_quantization, osn_threadpool* pool) {
  int32_t status = osn_check_quantization(input_quantization, "sigmoid input");
  if (status == OSN_STATUS_OK) status = osn_check_quantization(output_quantization, "sigmoid output");
  if (status != OSN_STATUS_OK) return status;
  RUN_UNARY("sigmoid qu8",
      xnn_create_sigmoid_nc_qu8(1, 1, 1, (uint8_t) input_quantization.zero_point, input_quantization.scale,
          (uint8_t) output_quantization.zero_point, output_quantization.scale, 0, 255, OSN_XNN_FLAGS, &op),
      xnn_setup_sigmoid_nc_qu8);
}

int32_t osn_convert_f32_to_f16(size_t count, const float* input, uint16_t* output, osn_threadpool* pool) {
  RUN_UNARY("convert f32 to f16", xnn_create_convert_nc_f32_f16(1, 1, 1, OSN_XNN_FLAGS, &op), xnn_setup_convert_nc_f32_f16);
}

int32_t osn_convert_f16_to_f32(size_t count, const uint16_t* input, float* output, osn_threadpool* pool) {
  RUN_UNARY("convert f16 to f32", xnn_create_convert_nc_f16_f32(1, 1, 1, OSN_XNN_FLAGS, &op), xnn_setup_convert_nc_f16_f32);
}

int32_t osn_convert_f32_to_qu8(size_t count, const float* input, uint8_t* output,
    osn_quantization output_quantization, osn_threadpool* pool) {
  int32_t status = osn_check_quantization(output_quantization, "convert f32 to qu8 output");
  if (status != OSN_STATUS_OK) return status;
  RUN_UNARY("convert f32 to qu8",
      xnn_create_convert_nc_f32_qu8(1, 1, 1, output_quantization.scale,
          (uint8_t) output_quantization.zero_point, 0, 255, OSN_XNN_FLAGS, &op),
      xnn_setup_convert_nc_f32_qu8);
}

int32_t osn_convert_qu8_to_f32(size_t count, const uint8_t* input, osn_quantization input_quantization,
    float* output, osn_threadpool* pool) {
  int32_t status = osn_check_quantization(input_quantization, "convert qu8 to f32 input");
  if (status != OSN_STATUS_OK) return status;
  RUN_UNARY("convert qu8 to f32",
      xnn_create_convert_nc_qu8_f32(1, 1, 1, input_quantization.scale,
          (uint8_t) input_quantization.zero_point, OSN_XNN_FLAGS, &op),
      xnn_setup_convert_nc_qu8_f32);
}

static int32_t check_softmax(const char* name, size_t rows, size_t channels, const void* input,
    const void* output, osn_threadpool* pool) {
  OSN_CHECK(channels > 0, "%s: channels must be positive", name);
  return check_buffers(name, rows, input, output, pool);
}

int32_t osn_softmax_f32(size_t rows, size_t channels, const float* input, float* output,
    osn_threadpool* pool) {
  int32_t status = check_softmax("softmax f32", rows, channels, input, output, pool);
  if (status != OSN_STATUS_OK || rows == 0) return status == OSN_STATUS_OK ? osn_ok() : status;
  xnn_operator_t op = NULL;
  OSN_CHECK_XNN(xnn_create_softmax_nc_f32(channels, channels, channels, OSN_XNN_FLAGS, &op), "xnn_create_softmax_nc_f32");
  return osn_run_and_delete(op, xnn_setup_softmax_nc_f32(op, rows, input, output, osn_pool(pool)),
      "xnn_setup_softmax_nc_f32", osn_pool(pool));
}

int32_t osn_softmax_qu8(size_t rows, size_t channels, const uint8_t* input, float input_scale,
    uint8_t* output, osn_quantization output_quantization, osn_threadpool* pool) {
  int32_t status = check_softmax("softmax qu8", rows, channels, input, output, pool);
  if (status != OSN_STATUS_OK) return status;
  OSN_CHECK(input_scale > 0.0f, "softmax qu8: input scale must be positive");
  OSN_CHECK(output_quantization.zero_point == 0 && output_quantization.scale == 0x1.0p-8f,
      "softmax qu8: output quantization must be scale 1/256, zero point 0 (got %g, %d)",
      (double) output_quantization.scale, (int) output_quantization.zero_point);
  if (rows == 0) return osn_ok();
  xnn_operator_t op = NULL;
  OSN_CHECK_XNN(xnn_create_softmax_nc_qu8(channels, channels, channels, input_scale, 0, 0x1.0p-8f, OSN_XNN_FLAGS, &op),
      "xnn_create_softmax_nc_qu8");
  return osn_run_and_delete(op, xnn_setup_softmax_nc_qu8(op, rows, input, output, osn_pool(pool)),
      "xnn_setup_softmax_nc_qu8", osn_pool(pool));
}
