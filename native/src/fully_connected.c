/* Fully connected (static-weights MatMul/Gemm) as a prepared operator: packed once, run many times. */
#include <math.h>

#include "osn_internal.h"

static int32_t check_common(size_t input_channels, size_t output_channels, size_t* output_stride,
    const void* weights, uint32_t flags, osn_operator** op_out) {
  OSN_CHECK(op_out != NULL, "fully connected: null output pointer");
  *op_out = NULL;
  OSN_CHECK(input_channels > 0 && output_channels > 0,
      "fully connected: channels must be positive (input %zu, output %zu)", input_channels, output_channels);
  OSN_CHECK(weights != NULL, "fully connected: null weights");
  if (*output_stride == 0) *output_stride = output_channels;
  OSN_CHECK(*output_stride >= output_channels, "fully connected: output stride %zu is below the %zu output channels",
      *output_stride, output_channels);
  OSN_CHECK((flags & ~(uint32_t) OSN_FLAG_TRANSPOSE_WEIGHTS) == 0, "fully connected: unknown flags 0x%x", flags);
  OSN_CHECK_INIT();
  return OSN_STATUS_OK;
}

static uint32_t xnn_flags(uint32_t flags) {
  return ((flags & OSN_FLAG_TRANSPOSE_WEIGHTS) ? XNN_FLAG_TRANSPOSE_WEIGHTS : 0) | OSN_XNN_FLAGS;
}

int32_t osn_fully_connected_create_f32(size_t input_channels, size_t output_channels, size_t output_stride,
    const float* weights, const float* bias, float output_min, float output_max, uint32_t flags,
    osn_operator** op_out) {
  int32_t status = check_common(input_channels, output_channels, &output_stride, weights, flags, op_out);
  if (status != OSN_STATUS_OK) return status;
  OSN_CHECK(output_min < output_max, "fully connected: output_min must be below output_max");
  xnn_operator_t xnn = NULL;
  OSN_CHECK_XNN(xnn_create_fully_connected_nc_f32(input_channels, output_channels, input_channels,
      output_stride, weights, bias, output_min, output_max, xnn_flags(flags), &xnn),
      "xnn_create_fully_connected_nc_f32");
  return osn_operator_wrap(xnn, OSN_KIND_FULLY_CONNECTED, OSN_DATATYPE_F32, op_out);
}

int32_t osn_fully_connected_create_f16(size_t input_channels, size_t output_channels, size_t output_stride,
    const uint16_t* weights, const uint16_t* bias, float output_min, float output_max, uint32_t flags,
    osn_operator** op_out) {
  int32_t status = check_common(input_channels, output_channels, &output_stride, weights, flags, op_out);
  if (status != OSN_STATUS_OK) return status;
  OSN_CHECK(output_min < output_max, "fully connected: output_min must be below output_max");
  xnn_operator_t xnn = NULL;
  OSN_CHECK_XNN(xnn_create_fully_connected_nc_f16(input_channels, output_channels, input_channels,
      output_stride, weights, bias, output_min, output_max, xnn_flags(flags), &xnn),
      "xnn_create_fully_connected_nc_f16");
  return osn_operator_wrap(xnn, OSN_KIND_FULLY_CONNECTED, OSN_DATATYPE_F16, op_out);
}

int32_t osn_fully_connected_create_qu8(size_t input_channels, size_t output_channels, size_t output_stride,
    osn_quantization input, osn_quantization weights_quantization, const uint8_t* weights,
    const int32_t* bias, osn_quantization output, uint32_t flags, osn_operator** op_out) {
  int32_t status = check_common(input_channels, output_channels, &output_stride, weights, flags, op_out);
  if (status == OSN_STATUS_OK) status = osn_check_quantization(input, "fully connected input");
  if (status == OSN_STATUS_OK) status = osn_check_quantization(weights_quantization, "fully connected weights");
  if (status == OSN_STATUS_OK) status = osn_check_quantization(output, "fully connected output");
  if (status != OSN_STATUS_OK) return status;
  xnn_operator_t xnn = NULL;
  OSN_CHECK_XNN(xnn_create_fully_connected_nc_qu8(input_channels, output_channels, input_channels,
      output_stride, (uint8_t) input.zero_point, input.scale, (uint8_t) weights_quantization.zero_point,
      weights_quantization.scale, weights, bias, (uint8_t) output.zero_point, output.scale, 0, 255,
      xnn_flags(flags), &xnn), "xnn_create_fully_connected_nc_qu8");
  return osn_operator_wrap(xnn, OSN_KIND_FULLY_CONNECTED, OSN_DATATYPE_QU8, op_out);
}

int32_t osn_fully_connected_run(osn_operator* op, size_t batch_size, const void* input, void* output,
    osn_threadpool* pool) {
  OSN_CHECK(op != NULL, "osn_fully_connected_run: null operator");
  OSN_CHECK(op->kind == OSN_KIND_FULLY_CONNECTED, "osn_fully_connected_run: the operator is not a fully connected one");
  OSN_CHECK(pool != NULL, "osn_fully_connected_run: null thread pool");
  OSN_CHECK(batch_size == 0 || (input != NULL && output != NULL), "osn_fully_connected_run: null input or output");
  enum xnn_status status;
  switch (op->datatype) {
    case OSN_DATATYPE_F32:
      status = xnn_setup_fully_connected_nc_f32(op->xnn, batch_size, input, output, osn_pool(pool));
      break;
    case OSN_DATATYPE_F16:
      status = xnn_setup_fully_connected_nc_f16(op->xnn, batch_size, input, output, osn_pool(pool));
      break;
    default:
      status = xnn_setup_fully_connected_nc_qu8(op->xnn, batch_size, input, output, osn_pool(pool));
      break;
  }
  OSN_CHECK_XNN(status, "xnn_setup_fully_connected_nc");
  OSN_CHECK_XNN(xnn_run_operator(op->xnn, osn_pool(pool)), "xnn_run_operator (fully connected)");
  return osn_ok();
}
