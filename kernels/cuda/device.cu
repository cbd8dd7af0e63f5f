// Device discovery for `--device auto|cpu|cuda[:N]`: the same binary must run with no driver.
#include <cuda_runtime.h>
#include <string.h>
#include "fth-cuda.h"

extern "C" int fth_cuda_device_count(const char **err_msg)
{
  int n = 0;
  cudaError_t st = cudaGetDeviceCount(&n);
  if (st != cudaSuccess) {
    if (err_msg)
      *err_msg = cudaGetErrorString(st);
    (void) cudaGetLastError(); /* clear the sticky error so later calls start clean */
    return 0;
  }
  if (n == 0 && err_msg)
    *err_msg = "no CUDA device";
  return n;
}

extern "C" int fth_cuda_device_info(int index, char *name, int name_len, unsigned long long *total_bytes)
{
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) {
    (void) cudaGetLastError();
    return -1;
  }
  if (name && name_len > 0) {
    strncpy(name, prop.name, (size_t) name_len - 1);
    name[name_len - 1] = '\0';
  }
  if (total_bytes)
    *total_bytes = (unsigned long long) prop.totalGlobalMem;
  return 0;
}
