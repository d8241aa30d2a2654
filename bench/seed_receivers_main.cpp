// bench_seed_receivers DB_PATH COUNT PROVIDER_URL [PREFIX]: see seed_receivers.h.
#include <cstdio>
#include <string>

#include "seed_receivers.h"

int main(int argc, char** argv) {
  if (argc < 4 || argc > 5) {
    std::fprintf(stderr, "usage: bench_seed_receivers DB_PATH COUNT PROVIDER_URL [PREFIX]\n");
    return 2;
  }
  tripline::Status s =
      tripline::seed_receivers(argv[1], std::stoi(argv[2]), argv[3], argc == 5 ? argv[4] : "bench");
  if (!s.ok()) {
    std::fprintf(stderr, "bench_seed_receivers: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}
