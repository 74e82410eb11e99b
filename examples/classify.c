/* classify.cpp through the C interface, as an FFI sees the library. */
#include <stdio.h>
#include <stdlib.h>

#include <mapgate/mapgate.h>

static int fail(const char* what) {
  fprintf(stderr, "classify_c: %s\n", what);
  return 1;
}

int main(int argc, char** argv) {
  mapgate_engine* net = NULL;
  mapgate_info info;
  unsigned char* record;
  float* logits;
  long long macs = 0;
  size_t bytes;
  int best = 0, j, status = 0;
  FILE* file;
  if (argc != 4) return fail("usage: classify_c WEIGHTS RECORDS.bin INDEX");
  if (mapgate_load(argv[1], &net) != MAPGATE_OK) return fail(mapgate_last_error());
  mapgate_get_info(net, &info);
  bytes = 1 + (size_t)info.in_channels * info.image_size * info.image_size;
  record = malloc(bytes);
  logits = malloc(sizeof(float) * info.num_classes);
  file = fopen(argv[2], "rb");
  if (!record || !logits || !file || fseek(file, atol(argv[3]) * (long)bytes, SEEK_SET) != 0 ||
      fread(record, 1, bytes, file) != bytes) {
    status = fail("cannot read the record (missing file, or INDEX past its end)");
  } else if (mapgate_run_pixels(net, record + 1, 1, logits, NULL, &macs) != MAPGATE_OK) {
    status = fail(mapgate_last_error());
  } else {
    for (j = 1; j < info.num_classes; ++j)
      if (logits[j] > logits[best]) best = j;
    printf("class %d (label %d), %lld MACs\n", best, record[0], macs);
  }
  if (file) fclose(file);
  free(record);
  free(logits);
  mapgate_free(net);
  return status;
}
