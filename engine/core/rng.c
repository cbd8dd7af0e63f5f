/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11). */
#include <fathom/core.h>

#include <math.h>

void fth_rng_init(FthRng *rng, uint64_t seed, uint64_t stream) {
  rng->seed = seed;
  rng->stream = stream;
  rng->offset = 0;
}

void fth_philox4x32(uint64_t seed, uint64_t stream, uint64_t block, uint32_t out[4]) {
  uint32_t c0 = (uint32_t)block, c1 = (uint32_t)(block >> 32);
  uint32_t c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int round = 0; round < 10; round++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0;
    uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

void fth_rng_uniform(FthRng *rng, float *out, size_t n, float lo, float hi) {
  uint32_t r[4];
  for (size_t i = 0; i < n; i++) {
    if (i % 4 == 0)
      fth_philox4x32(rng->seed, rng->stream, rng->offset + i / 4, r);
    out[i] = lo + (hi - lo) * fth_u32_to_unit_float(r[i % 4]);
  }
  rng->offset += (n + 3) / 4;
}

void fth_rng_normal(FthRng *rng, float *out, size_t n, float mean, float std) {
  uint32_t r[4];
  double z[4];
  for (size_t i = 0; i < n; i++) {
    if (i % 4 == 0) {
      fth_philox4x32(rng->seed, rng->stream, rng->offset + i / 4, r);
      for (int p = 0; p < 2; p++) {
        /* u1 in (0, 1] so the logarithm is finite */
        double u1 = ((double)(r[2 * p] >> 8) + 1.0) / 16777216.0;
        double u2 = (double)(r[2 * p + 1] >> 8) / 16777216.0;
        double radius = sqrt(-2.0 * log(u1));
        z[2 * p] = radius * cos(6.283185307179586 * u2);
        z[2 * p + 1] = radius * sin(6.283185307179586 * u2);
      }
    }
    out[i] = mean + std * (float)z[i % 4];
  }
  rng->offset += (n + 3) / 4;
}

uint32_t fth_rng_u32(FthRng *rng) {
  uint32_t r[4];
  fth_philox4x32(rng->seed, rng->stream, rng->offset++, r);
  return r[0];
}
