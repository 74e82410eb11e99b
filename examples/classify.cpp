// Classifies record INDEX of a CIFAR-10 style file (1 label byte + planar pixels per
// record) with a mapgate weight file, and prints the class and the MACs it took.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <mapgate/mapgate.hpp>

int main(int argc, char** argv) {
  if (argc != 4) return std::fprintf(stderr, "usage: classify WEIGHTS RECORDS.bin INDEX\n"), 2;
  try {
    mapgate::Classifier net(argv[1]);
    std::vector<std::uint8_t> record(1 + net.image_bytes());
    std::ifstream file(argv[2], std::ios::binary);
    file.seekg(std::stoll(argv[3]) * static_cast<long long>(record.size()));
    if (!file.read(reinterpret_cast<char*>(record.data()), record.size()))
      throw std::runtime_error(std::string("\"") + argv[2] + "\": no record " + argv[3]);
    mapgate::Classification out = net.run_pixels(record.data() + 1, /*n=*/1);
    std::printf("class %d (label %d), %lld MACs\n", out.label(0), record[0], out.macs[0]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "classify: %s\n", e.what());
    return 1;
  }
}
