// What LibTorch's archive reader would trust in a checkpoint, checked before it runs: the
// zip directory (every record inside the file, sizes a stored or deflated record can
// have) and every pickle record (each length and memo index within bounds). LibTorch
// 1.13 allocates what a pickle's length field says (a 20 KB file made it allocate 4 GiB)
// and what a record's declared size says. No LibTorch here: it reads bytes only.
#pragma once

#include <cstdint>
#include <string>

namespace mapgate {

// Throws Error "checkpoint "P": ..." naming the record and the rule, when the zip
// directory of the file at `path` (a regular file of `file_size` bytes) or one of its
// pickles is malformed; returns otherwise. Reads the directory and the pickles only.
void check_checkpoint_archive(const std::string& path, std::uint64_t file_size);

// The pickle scan alone, on one record's bytes (tests, fuzzing): "" when every opcode is
// known and every length and memo index stays in bounds, else what is wrong.
std::string pickle_problem(const std::string& bytes);

}  // namespace mapgate
