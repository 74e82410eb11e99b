// Threads that share one example's forward pass (batch 1 on several threads): every member
// runs every step, each takes its share of a step's maps, and a spin barrier separates the
// steps; the leader (rank 0) alone does the serial parts. Spinning, not sleeping: a step
// lasts microseconds to a millisecond, and waking a sleeping thread costs tens of them.
#pragma once

#include <atomic>
#include <thread>
#include <utility>

namespace mapgate {

class SpinBarrier {
 public:
  explicit SpinBarrier(int members) : members_(members) {}

  void wait() {
    const unsigned generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == members_ - 1) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
      return;
    }
    for (int spins = 0; generation_.load(std::memory_order_acquire) == generation; ++spins) {
      if (spins < 4096) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      } else {
        std::this_thread::yield();  // a member was descheduled: give the core back
      }
    }
  }

 private:
  const int members_;
  std::atomic<int> arrived_{0};
  std::atomic<unsigned> generation_{0};
};

struct Team {
  int rank = 0, size = 1;
  SpinBarrier* barrier = nullptr;  // null when size is 1

  bool leader() const { return rank == 0; }
  void sync() const {
    if (size > 1) barrier->wait();
  }
  // This member's share [first, first + count) of n items, in contiguous balanced slices.
  std::pair<int, int> share(int n) const {
    const int first = static_cast<int>(static_cast<long long>(n) * rank / size);
    const int end = static_cast<int>(static_cast<long long>(n) * (rank + 1) / size);
    return {first, end - first};
  }
};

}  // namespace mapgate
