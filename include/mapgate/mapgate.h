/* mapgate engine, C interface: load a mapgate weight file (docs/weight-format.md) and
 * classify images with input-dependent feature-map pruning, without LibTorch. Plain C99
 * for FFIs (ctypes, cffi, JNA, ...); no C++ exception ever crosses it. Every function
 * that can fail returns a mapgate_status; on failure mapgate_last_error() gives one line
 * naming the file or argument and the rule that was broken. */
#ifndef MAPGATE_MAPGATE_H
#define MAPGATE_MAPGATE_H

#include <stddef.h>

/* The library is built with hidden visibility; only these functions are exported. */
#if defined(MAPGATE_BUILDING_LIBRARY) && defined(__GNUC__)
#define MAPGATE_API __attribute__((visibility("default")))
#else
#define MAPGATE_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mapgate_status {
  MAPGATE_OK = 0,
  MAPGATE_INVALID_ARGUMENT = 1, /* a null pointer, n < 0, threads < 1, tau outside [0, 1] */
  MAPGATE_BAD_FILE = 2,         /* the weight file is missing, unreadable or malformed */
  MAPGATE_FAILED = 3            /* anything else (out of memory, ...) */
} mapgate_status;

typedef enum mapgate_mode {
  MAPGATE_MODE_GATED = 0, /* keep map j of a layer when its gate's p_j > tau (default) */
  MAPGATE_MODE_DENSE = 1  /* every map on, gates not evaluated: the plain DenseNet */
} mapgate_mode;

/* What a weight file holds. An image is in_channels x image_size x image_size. */
typedef struct mapgate_info {
  int in_channels;
  int image_size;
  int num_classes;
  int layers;       /* dense layers = gates; masks have layers x growth entries */
  int growth;       /* k: maps per dense layer */
  int gated;        /* 0: the file has no gates and runs dense in either mode */
  double threshold; /* tau in use (the file's unless set) */
} mapgate_info;

/* Opaque. One call at a time per handle; distinct handles may run on distinct threads. */
typedef struct mapgate_engine mapgate_engine;

/* The library's version, "MAJOR.MINOR.PATCH". */
MAPGATE_API const char* mapgate_version(void);

/* The message of the last failed call on this thread ("" if none). Valid until the next
 * failing call on this thread. */
MAPGATE_API const char* mapgate_last_error(void);

/* Reads and checks `path`; on success *out is a new handle (gated mode, the file's tau,
 * 1 thread) to release with mapgate_free. On failure *out is NULL. */
MAPGATE_API mapgate_status mapgate_load(const char* path, mapgate_engine** out);
MAPGATE_API void mapgate_free(mapgate_engine* engine); /* NULL is fine */

MAPGATE_API mapgate_status mapgate_get_info(const mapgate_engine* engine, mapgate_info* out);
/* tau in [0, 1]; a negative tau restores the weight file's. */
MAPGATE_API mapgate_status mapgate_set_threshold(mapgate_engine* engine, double tau);
/* A batch runs on up to `threads` threads (>= 1): one image per thread, or, with fewer
   images than threads, each image shared by all of them. Results do not depend on it. */
MAPGATE_API mapgate_status mapgate_set_threads(mapgate_engine* engine, int threads);
/* mode: a mapgate_mode value (an int, so that any value an FFI passes is well defined). */
MAPGATE_API mapgate_status mapgate_set_mode(mapgate_engine* engine, int mode);

/* Runs n examples. pixels: n x in_channels x image_size x image_size bytes, 0..255,
 * planar (CIFAR-10's record layout); the weight file's normalisation is applied.
 * Outputs, each may be NULL: logits (n x num_classes), masks (n x layers x growth, 1 = map
 * computed), macs (n: multiply-accumulates as the paper counts them, gates included; a
 * transition's 1x1 convolution counts at full resolution, while the engine runs it after
 * the pooling, at a quarter of that). */
MAPGATE_API mapgate_status mapgate_run_pixels(mapgate_engine* engine, const unsigned char* pixels, int n,
                                              float* logits, unsigned char* masks, long long* macs);
/* The same from images already normalised: x = (pixel / 255 - mean) / std per channel. */
MAPGATE_API mapgate_status mapgate_run(mapgate_engine* engine, const float* images, int n, float* logits,
                                       unsigned char* masks, long long* macs);

#ifdef __cplusplus
}
#endif

#endif /* MAPGATE_MAPGATE_H */
