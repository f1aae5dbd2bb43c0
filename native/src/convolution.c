/* 2-D convolution, NHWC, as a prepared operator (kernel packed once). */
#include "osn_internal.h"

static int32_t check_params(const osn_convolution2d_params* p, const void* kernel, osn_operator** op_out) {
  OSN_CHECK(op_out != NULL, "convolution: null output pointer");
  *op_out = NULL;
  OSN_CHECK(p != NULL, "convolution: null params");
  OSN_CHECK(kernel != NULL, "convolution: null kernel");
  OSN_CHECK(p->kernel_height > 0 && p->kernel_width > 0, "convolution: kernel %ux%u must be positive",
      p->kernel_height, p->kernel_width);
  OSN_CHECK(p->stride_height > 0 && p->stride_width > 0, "convolution: stride %ux%u must be positive",
      p->stride_height, p->stride_width);
  OSN_CHECK(p->dilation_height > 0 && p->dilation_width > 0, "convolution: dilation %ux%u must be positive",
      p->dilation_height, p->dilation_width);
  OSN_CHECK(p->groups > 0 && p->group_input_channels > 0 && p->group_output_channels > 0,
      "convolution: groups %u, group input channels %zu and group output channels %zu must be positive",
      p->groups, p->group_input_channels, p->group_output_channels);
  OSN_CHECK(p->input_pixel_stride == 0 || p->input_pixel_stride >= p->groups * p->group_input_channels,
      "convolution: input pixel stride %zu is below the %zu input channels", p->input_pixel_stride,
      p->groups * p->group_input_channels);
  OSN_CHECK(p->output_pixel_stride == 0 || p->output_pixel_stride >= p->groups * p->group_output_channels,
      "convolution: output pixel stride %zu is below the %zu output channels", p->output_pixel_stride,
      p->groups * p->group_output_channels);
  OSN_CHECK_INIT();
  return OSN_STATUS_OK;
}

static int32_t wrap_convolution(xnn_operator_t xnn, const osn_convolution2d_params* params,
    osn_datatype datatype, osn_operator** op_out) {
  int32_t status = osn_operator_wrap(xnn, OSN_KIND_CONVOLUTION2D, datatype, op_out);
  if (status == OSN_STATUS_OK) (*op_out)->convolution = *params;
  return status;
}

static size_t input_pixel_stride(const osn_convolution2d_params* p) {
  return p->input_pixel_stride != 0 ? p->input_pixel_stride : p->groups * p->group_input_channels;
}

static size_t output_pixel_stride(const osn_convolution2d_params* p) {
  return p->output_pixel_stride != 0 ? p->output_pixel_stride : p->groups * p->group_output_channels;
}

/* The arguments every XNNPACK convolution2d_nhwc create call starts with. */
#define CONV_GEOMETRY(p) \
  (p)->padding_top, (p)->padding_right, (p)->padding_bottom, (p)->padding_left, \
  (p)->kernel_height, (p)->kernel_width, (p)->stride_height, (p)->stride_width, \
  (p)->dilation_height, (p)->dilation_width, (p)->groups, (p)->group_input_channels, \
  (p)->group_output_channels, input_pixel_stride(p), output_pixel_stride(p)

int32_t osn_convolution2d_create_f32(const osn_convolution2d_params* params, const float* kernel,
    const float* bias, float output_min, float output_max, osn_operator** op_out) {
  int32_t status = check_params(params, kernel, op_out);
  if (status != OSN_STATUS_OK) return status;
  OSN_CHECK(output_min < output_max, "convolution: output_min must be below output_max");
  xnn_operator_t xnn = NULL;
  OSN_CHECK_XNN(xnn_create_convolution2d_nhwc_f32(CONV_GEOMETRY(params), kernel, bias, output_min,
      output_max, OSN_XNN_FLAGS, &xnn), "xnn_create_convolution2d_nhwc_f32");
  return wrap_convolution(xnn, params, OSN_DATATYPE_F32, op_out);
}

int32_t osn_convolution2d_create_f16(const osn_convolution2d_params* params, const uint16_t* kernel,
    const uint16_t* bias, float output_min, float output_max, osn_operator** op_out) {
  int32_t status = check_params(params, kernel, op_out);
  if (status != OSN_STATUS_OK) return status;
  OSN_CHECK(output_min < output_max, "convolution: output_min must be below output_max");
  xnn_operator_t xnn = NULL;
  OSN_CHECK_XNN(xnn_create_convolution2d_nhwc_f16(CONV_GEOMETRY(params), kernel, bias, output_min,
      output_max, OSN_XNN_FLAGS, &xnn), "xnn_create_convolution2d_nhwc_f16");
  return wrap_convolution(xnn, params, OSN_DATATYPE_F16, op_out);
}

int32_t osn_convolution2d_create_qu8(const osn_convolution2d_params* params, osn_quantization input,
    osn_quantization kernel_quantization, const uint8_t* kernel, const int32_t* bias,
    osn_quantization output, osn_operator** op_out) {
  int32_t status = check_params(params, kernel, op_out);
  if (status == OSN_STATUS_OK) status = osn_check_quantization(input, "convolution input");
  if (status == OSN_STATUS_OK) status = osn_check_quantization(kernel_quantization, "convolution kernel");
  if (status == OSN_STATUS_OK) status = osn_check_quantization(output, "convolution output");
  if (status != OSN_STATUS_OK) return status;
  xnn_operator_t xnn = NULL;
  OSN_CHECK_XNN(xnn_create_convolution2d_nhwc_qu8(CONV_GEOMETRY(params), (uint8_t) input.zero_point,
      input.scale, (uint8_t) kernel_quantization.zero_point, kernel_quantization.scale, kernel, bias,
      (uint8_t) output.zero_point, output.scale, 0, 255, OSN_XNN_FLAGS, &xnn), "xnn_create_convolution2d_nhwc_qu8");
  return wrap_convolution(xnn, params, OSN_DATATYPE_QU8, op_out);
}

int32_t osn_convolution2d_run(osn_operator* op, size_t batch_size, size_t input_height,
    size_t input_width, const void* input, void* output, osn_threadpool* pool) {
  OSN_CHECK(op != NULL, "osn_convolution2d_run: null operator");
  OSN_CHECK(op->kind == OSN_KIND_CONVOLUTION2D, "osn_convolution2d_run: the operator is not a convolution");
  OSN_CHECK(pool != NULL, "osn_convolution2d_run: null thread pool");
  OSN_CHECK(input != NULL && output != NULL, "osn_convolution2d_run: null input or output");
  OSN_CHECK(batch_size > 0 && input_height > 0 && input_width > 0,
      "osn_convolution2d_run: input %zux%zux%zu must be non-empty", batch_size, input_height, input_width);
  const osn_convolution2d_params* p = &op->convolution;
  int32_t fits = osn_check_window("osn_convolution2d_run", input_height, p->padding_top, p->padding_bottom,
      p->kernel_height, p->dilation_height, "height");
  if (fits == OSN_STATUS_OK)
    fits = osn_check_window("osn_convolution2d_run", input_width, p->padding_left, p->padding_right,
        p->kernel_width, p->dilation_width, "width");
  if (fits != OSN_STATUS_OK) return fits;
  enum xnn_status status;
  switch (op->datatype) {
    case OSN_DATATYPE_F32:
      status = xnn_setup_convolution2d_nhwc_f32(op->xnn, batch_size, input_height, input_width, input,
          output, osn_pool(pool));
      break;
    case OSN_DATATYPE_F16:
      status = xnn_setup_convolution2d_nhwc_f16(op->xnn, batch_size, input_height, input_width, input,
          output, osn_pool(pool));
      break;
    default:
      status = xnn_setup_convolution2d_nhwc_qu8(op->xnn, batch_size, input_height, input_width, input,
          output, osn_pool(pool));
      break;
  }
  OSN_CHECK_XNN(status, "xnn_setup_convolution2d_nhwc");
  OSN_CHECK_XNN(xnn_run_operator(op->xnn, osn_pool(pool)), "xnn_run_operator (convolution)");
  return osn_ok();
}
