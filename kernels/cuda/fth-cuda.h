/* C interface of the CUDA backend. Only this header crosses from kernels/cuda into C code;
 * it includes no CUDA header. */
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

/* Number of CUDA devices that answer; 0 when there is no driver or no device. When err_msg is
 * not NULL and no device answers, it receives CUDA's reason (static storage). */
int fth_cuda_device_count(const char **err_msg);

/* Name and total memory of device `index`; returns 0 on success, -1 on failure. */
int fth_cuda_device_info(int index, char *name, int name_len, unsigned long long *total_bytes);

#ifdef __cplusplus
}
#endif
