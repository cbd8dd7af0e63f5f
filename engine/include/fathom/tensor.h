/* Fathom tensors: dtypes, strided views up to 5-D, and dtype conversions. */
#pragma once

#include <fathom/core.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  FTH_F32 = 0,
  FTH_F16,
  FTH_BF16,
  FTH_I8,
  FTH_U8,
  FTH_I32,
  FTH_DTYPE_COUNT,
} FthDType;

size_t fth_dtype_size(FthDType dtype);
const char *fth_dtype_name(FthDType dtype); /* "f32", "f16", ... ; safetensors uses these upper-cased */

#define FTH_MAX_DIMS 5

/* A tensor is a view: dtype, shape, strides (in elements) and a data pointer. Kernels receive
 * these; graph-owned tensors point into the graph's arena or a parameter's storage. `owned`
 * means fth_tensor_free releases data. */
typedef struct {
  FthDType dtype;
  int ndim; /* 0 (scalar) to FTH_MAX_DIMS */
  int64_t shape[FTH_MAX_DIMS];
  int64_t strides[FTH_MAX_DIMS];
  void *data;
  bool owned;
} FthTensor;

/* Allocates a contiguous zeroed tensor (data aligned to FTH_ALIGNMENT). */
FthStatus fth_tensor_init(FthTensor *t, FthDType dtype, int ndim, const int64_t *shape);
void fth_tensor_free(FthTensor *t); /* releases data if owned; t itself is the caller's */
/* A contiguous view of existing memory (not owned). */
void fth_tensor_view(FthTensor *t, FthDType dtype, int ndim, const int64_t *shape, void *data);

int64_t fth_tensor_numel(const FthTensor *t);
size_t fth_tensor_nbytes(const FthTensor *t); /* numel * dtype size */
bool fth_tensor_is_contiguous(const FthTensor *t);
void fth_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
int64_t fth_shape_numel(int ndim, const int64_t *shape);

/* Copies with conversion between any two of f32/f16/bf16 (and same-dtype copies of every
 * dtype). Shapes must be equal; strides may differ. */
FthStatus fth_tensor_copy(FthTensor *dst, const FthTensor *src);

/* Bulk conversions, round to nearest even, NaN kept NaN (quiet), overflow to f16 gives Inf.
 * AVX-512 paths are chosen at run time; results are bit-identical to the scalar ones. */
void fth_f32_to_f16(const float *src, uint16_t *dst, size_t n);
void fth_f16_to_f32(const uint16_t *src, float *dst, size_t n);
void fth_f32_to_bf16(const float *src, uint16_t *dst, size_t n);
void fth_bf16_to_f32(const uint16_t *src, float *dst, size_t n);

/* Single-value forms (scalar reference). */
uint16_t fth_f32_to_f16_scalar(float x);
float fth_f16_to_f32_scalar(uint16_t h);
uint16_t fth_f32_to_bf16_scalar(float x);
float fth_bf16_to_f32_scalar(uint16_t h);

#ifdef __cplusplus
}
#endif
