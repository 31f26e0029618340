#include "testing.h"

#include <cstdlib>
#include <exception>

namespace qtorch {
namespace testing {

std::vector<TestCase>& registry() {
  static std::vector<TestCase> tests;
  return tests;
}

int& current_failures() {
  static int failures = 0;
  return failures;
}

std::vector<Isa> vector_isas() {
  std::vector<Isa> out;
  for (Isa isa : supported_isas()) {
    if (isa != Isa::kScalar) out.push_back(isa);
  }
  return out;
}

static unsigned seed() {
  static const unsigned value = [] {
    const char* env = std::getenv("QTORCH_TEST_SEED");
    return env ? unsigned(std::strtoul(env, nullptr, 10)) : std::random_device{}();
  }();
  return value;
}

std::mt19937& rng() {
  static std::mt19937 engine(seed());
  return engine;
}

void report_failure(const char* file, int line, const std::string& what) {
  // Cap the output of one test; the count still records every failure.
  if (current_failures()++ < 10) std::fprintf(stderr, "  %s:%d: %s\n", file, line, what.c_str());
}

}  // namespace testing
}  // namespace qtorch

int main() {
  using namespace qtorch::testing;
  std::printf("seed %u; ISAs:", seed());
  for (qtorch::Isa isa : qtorch::supported_isas()) std::printf(" %s", qtorch::isa_name(isa));
  std::printf("%s\n", qtorch::neon_has_dotprod() ? " (neon dotprod)" : "");
  int passed = 0, failed = 0;
  for (const TestCase& test : registry()) {
    current_failures() = 0;
    try {
      test.body();
    } catch (const std::exception& e) {
      report_failure(test.name, 0, std::string("exception: ") + e.what());
    }
    if (current_failures() == 0) {
      ++passed;
    } else {
      ++failed;
      std::printf("FAILED %s (%d checks)\n", test.name, current_failures());
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
