// Runs a TorchScript model saved from Python (torch.jit.save) on an input read
// from a file, without Python: the deployment path of a converted qtorch model.
//
//   run_model <qtorch ops library> <model.pt> <input.pt> <output.pt> [--threads N] [--repeat N]
//
// <qtorch ops library> is qtorch/_C.abi3.so as setup.py builds it (or the
// qtorch_ops library CMake builds): loading it registers the torch.ops.qtorch
// operators the scripted graph calls, exactly as `import qtorch` does in Python.
// <input.pt> holds a tensor, or a tuple/list of tensors (the forward arguments),
// saved with torch.save; <output.pt> receives forward's result through
// torch::jit::pickle_save, which torch.load reads. With --repeat N the forward runs N
// times and the median latency goes to stdout.
//
// Errors (a missing file, a model fed a wrong dtype or shape, ...) print
// "run_model: error: <message>" on stderr and exit with status 1; the message is
// the one the op raised, so it reads as it does in Python.
#include <dlfcn.h>

#include <ATen/Parallel.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Options {
  std::string ops_library;
  std::string model;
  std::string input;
  std::string output;
  int threads = 0;  // 0: torch's default
  int repeat = 0;
};

const char kUsage[] = "usage: run_model <qtorch ops library> <model.pt> <input.pt> <output.pt> [--threads N] [--repeat N]";

int positive_int(const std::string& flag, const std::string& text) {
  size_t used = 0;
  int value = 0;
  try {
    value = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value < 1) throw std::invalid_argument(flag + " needs a positive integer, got '" + text + "'");
  return value;
}

Options parse_options(int argc, char** argv) {
  Options options;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--threads" || arg == "--repeat") {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      const int value = positive_int(arg, argv[++i]);
      (arg == "--threads" ? options.threads : options.repeat) = value;
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 4) throw std::invalid_argument(kUsage);
  options.ops_library = positional[0];
  options.model = positional[1];
  options.input = positional[2];
  options.output = positional[3];
  return options;
}

// RTLD_GLOBAL as torch.ops.load_library does; the library's static initializers
// register the qtorch operators with the dispatcher.
void load_ops_library(const std::string& path) {
  if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
    throw std::runtime_error("cannot load the qtorch ops library '" + path + "': " + dlerror());
  }
}

std::vector<char> read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open '" + path + "'");
  return std::vector<char>(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream file(path, std::ios::binary);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!file) throw std::runtime_error("cannot write '" + path + "'");
}

// A tuple or list in the input file spreads over forward's arguments.
std::vector<torch::jit::IValue> forward_arguments(const torch::jit::IValue& input) {
  if (input.isTuple()) {
    const auto& elements = input.toTupleRef().elements();
    return std::vector<torch::jit::IValue>(elements.begin(), elements.end());
  }
  if (input.isList()) {
    const auto list = input.toListRef();
    return std::vector<torch::jit::IValue>(list.begin(), list.end());
  }
  return {input};
}

double median_latency_ms(torch::jit::Module& model, const std::vector<torch::jit::IValue>& arguments, int repeat) {
  std::vector<double> times;
  for (int i = 0; i < repeat; ++i) {
    const auto start = std::chrono::steady_clock::now();
    model.forward(arguments);
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

int run(const Options& options) {
  load_ops_library(options.ops_library);
  if (options.threads > 0) at::set_num_threads(options.threads);
  torch::jit::Module model = torch::jit::load(options.model);
  model.eval();
  const std::vector<torch::jit::IValue> arguments = forward_arguments(torch::jit::pickle_load(read_file(options.input)));
  torch::NoGradGuard no_grad;
  const torch::jit::IValue output = model.forward(arguments);
  write_file(options.output, torch::jit::pickle_save(output));
  if (options.repeat > 0) {
    std::printf("median latency: %.4f ms over %d runs\n", median_latency_ms(model, arguments, options.repeat),
                options.repeat);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_options(argc, argv));
  } catch (const c10::Error& e) {
    std::cerr << "run_model: error: " << e.what_without_backtrace() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "run_model: error: " << e.what() << std::endl;
  }
  return 1;
}
