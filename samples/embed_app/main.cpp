// embed_app: a small application that embeds a model compiled by fgc (through fgc_add_model in
// CMakeLists.txt) and classifies one 28x28 grayscale Fashion-MNIST-style image.
//
//   embed_app IMAGE.pgm [--weights W.fgcw]
//   embed_app IMAGES-IDX3 INDEX [--weights W.fgcw]
//
// IMAGE.pgm is a binary (P5) or ASCII (P2) PGM of 28x28 pixels. IMAGES-IDX3 is an IDX image file
// such as Fashion-MNIST's t10k-images-idx3-ubyte (gzip-compressed .gz too when the app was built
// with zlib); when the matching labels file (labels-idx1 for images-idx3) sits beside it, the true
// label is printed as well. Pixels are scaled to [0, 1] and fed to the model, which must take 784
// floats (any input shape with 784 elements per sample) and give 10 scores. --weights loads the
// weights from an fgc weights file instead of the ones compiled into the program.
//
// Prints the 10 class scores and the predicted class; exits 0 on success, 1 on any error.
#include "embed_model.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef EMBED_APP_HAVE_ZLIB
#include <zlib.h>
#endif

namespace {

constexpr int kSide = 28;
constexpr int kPixels = kSide * kSide;
const char *const kClassNames[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                     "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

[[noreturn]] void fail(const std::string &message) { throw std::runtime_error(message); }

// The whole file; gzip-compressed files are inflated when zlib is available (gzread also reads
// uncompressed files as they are).
std::string readFile(const std::string &path) {
#ifdef EMBED_APP_HAVE_ZLIB
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f)
    fail("cannot open " + path);
  std::string data;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0)
    data.append(buf, static_cast<std::size_t>(n));
  bool bad = n < 0;
  gzclose(f);
  if (bad)
    fail("cannot read " + path + " (corrupt gzip data?)");
  return data;
#else
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail("cannot open " + path);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0)
    fail(path + " is gzip-compressed but this build has no zlib: gunzip it first");
  return data;
#endif
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Next whitespace-separated header token of a PGM, skipping '#' comments.
std::string pgmToken(const std::string &data, std::size_t &pos) {
  for (;;) {
    while (pos < data.size() && std::isspace(static_cast<unsigned char>(data[pos])))
      ++pos;
    if (pos < data.size() && data[pos] == '#') {
      while (pos < data.size() && data[pos] != '\n')
        ++pos;
      continue;
    }
    break;
  }
  std::size_t start = pos;
  while (pos < data.size() && !std::isspace(static_cast<unsigned char>(data[pos])))
    ++pos;
  return data.substr(start, pos - start);
}

long pgmNumber(const std::string &data, std::size_t &pos, const std::string &path, const char *what) {
  std::string token = pgmToken(data, pos);
  try {
    std::size_t used = 0;
    long value = std::stol(token, &used);
    if (used == token.size() && value > 0)
      return value;
  } catch (const std::exception &) {
  }
  fail(path + ": bad PGM " + what + " '" + token + "'");
}

// A 28x28 PGM (P5 binary with maxval <= 255, or P2 ASCII) as pixels scaled to [0, 1].
std::vector<float> readPgm(const std::string &path) {
  std::string data = readFile(path);
  std::size_t pos = 0;
  std::string magic = pgmToken(data, pos);
  if (magic != "P5" && magic != "P2")
    fail(path + ": not a PGM image (magic '" + magic.substr(0, 8) + "', expected P5 or P2)");
  long width = pgmNumber(data, pos, path, "width");
  long height = pgmNumber(data, pos, path, "height");
  long maxval = pgmNumber(data, pos, path, "maxval");
  if (width != kSide || height != kSide)
    fail(path + ": image is " + std::to_string(width) + "x" + std::to_string(height) +
         ", the model takes 28x28");
  std::vector<float> pixels(kPixels);
  if (magic == "P5") {
    if (maxval > 255)
      fail(path + ": 16-bit PGM (maxval " + std::to_string(maxval) + ") is not supported");
    ++pos; // the single whitespace byte after maxval
    if (data.size() < pos + kPixels)
      fail(path + ": truncated: " + std::to_string(data.size() - std::min(pos, data.size())) +
           " pixel bytes, expected " + std::to_string(kPixels));
    for (int i = 0; i < kPixels; ++i)
      pixels[i] = static_cast<float>(static_cast<unsigned char>(data[pos + i])) / maxval;
  } else {
    for (int i = 0; i < kPixels; ++i) {
      std::string token = pgmToken(data, pos);
      if (token.empty())
        fail(path + ": truncated: " + std::to_string(i) + " pixels, expected " +
             std::to_string(kPixels));
      long v = std::strtol(token.c_str(), nullptr, 10);
      if (v < 0 || v > maxval)
        fail(path + ": pixel " + std::to_string(i) + " is " + token + ", outside 0.." +
             std::to_string(maxval));
      pixels[i] = static_cast<float>(v) / maxval;
    }
  }
  return pixels;
}

uint32_t bigEndian32(const std::string &data, std::size_t offset) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v = (v << 8) | static_cast<unsigned char>(data[offset + i]);
  return v;
}

// Image `index` of an IDX3 file of unsigned bytes (magic 0x00000803), scaled to [0, 1].
std::vector<float> readIdxImage(const std::string &path, long index) {
  std::string data = readFile(path);
  if (data.size() < 16 || bigEndian32(data, 0) != 0x00000803)
    fail(path + ": not an IDX3 unsigned-byte image file");
  uint32_t count = bigEndian32(data, 4), rows = bigEndian32(data, 8), cols = bigEndian32(data, 12);
  if (rows != kSide || cols != kSide)
    fail(path + ": images are " + std::to_string(rows) + "x" + std::to_string(cols) +
         ", the model takes 28x28");
  if (index < 0 || static_cast<uint32_t>(index) >= count)
    fail(path + ": index " + std::to_string(index) + " is out of range (the file holds " +
         std::to_string(count) + " images)");
  std::size_t offset = 16 + static_cast<std::size_t>(index) * kPixels;
  if (data.size() < offset + kPixels)
    fail(path + ": truncated before image " + std::to_string(index));
  std::vector<float> pixels(kPixels);
  for (int i = 0; i < kPixels; ++i)
    pixels[i] = static_cast<unsigned char>(data[offset + i]) / 255.0f;
  return pixels;
}

// The label of image `index` from the labels file beside an images file, or -1 if there is none.
int idxLabel(const std::string &imagesPath, long index) {
  std::size_t at = imagesPath.rfind("images-idx3");
  if (at == std::string::npos)
    return -1;
  std::string path = imagesPath;
  path.replace(at, 11, "labels-idx1");
  if (!std::ifstream(path))
    return -1;
  std::string data = readFile(path);
  if (data.size() < 8 || bigEndian32(data, 0) != 0x00000801 ||
      static_cast<std::size_t>(index) + 8 >= data.size())
    return -1;
  return static_cast<unsigned char>(data[8 + index]);
}

int usage(const char *argv0) {
  std::cerr << "usage: " << argv0 << " IMAGE.pgm [--weights W.fgcw]\n"
            << "       " << argv0 << " IMAGES-IDX3 INDEX [--weights W.fgcw]\n"
            << "Classifies a 28x28 grayscale image with the compiled model.\n";
  return 1;
}

int run(int argc, char **argv) {
  std::vector<std::string> positional;
  std::string weightsPath;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--weights" && i + 1 < argc)
      weightsPath = argv[++i];
    else if (arg == "-h" || arg == "--help" || (!arg.empty() && arg[0] == '-' && arg.size() > 1))
      return usage(argv[0]);
    else
      positional.push_back(arg);
  }
  if (positional.empty() || positional.size() > 2)
    return usage(argv[0]);

  const std::string &imagePath = positional[0];
  std::vector<float> pixels;
  int trueLabel = -1;
  if (positional.size() == 2) {
    char *end = nullptr;
    long index = std::strtol(positional[1].c_str(), &end, 10);
    if (positional[1].empty() || *end != '\0')
      fail("INDEX must be a number, not '" + positional[1] + "'");
    pixels = readIdxImage(imagePath, index);
    trueLabel = idxLabel(imagePath, index);
    std::cout << "image: " << imagePath << " #" << index << "\n";
  } else {
    if (endsWith(imagePath, "-idx3-ubyte") || endsWith(imagePath, "-idx3-ubyte.gz"))
      fail(imagePath + " is an IDX file: give the image index after it");
    pixels = readPgm(imagePath);
    std::cout << "image: " << imagePath << "\n";
  }

  using Model = embed::Classifier;
  // The model's input shape with batch 1 (None dimensions -> 1); it must hold 784 values.
  std::vector<int64_t> shape = Model::inputShape(0);
  int64_t elements = 1;
  for (int64_t &d : shape) {
    if (d < 0)
      d = 1;
    elements *= d;
  }
  if (Model::kNumInputs != 1 || elements != kPixels)
    fail("the compiled model must take one input of 784 values per image (28x28), not " +
         std::to_string(elements));

  std::unique_ptr<Model> model =
      weightsPath.empty() ? std::make_unique<Model>() : std::make_unique<Model>(weightsPath);
  std::vector<fgc::rt::Tensor> inputs;
  inputs.push_back(fgc::rt::Tensor::fromFloats(shape, pixels.data()));
  std::vector<fgc::rt::Tensor> outputs = model->predict(inputs);
  const fgc::rt::Tensor &scores = outputs.at(0);
  if (scores.dtype() != fgc::rt::DType::Float32 || scores.size() != 10)
    fail("the compiled model must give 10 float scores, it gave " +
         std::to_string(scores.size()) + " " + fgc::rt::dtypeName(scores.dtype()) + " values");

  const float *s = scores.data<float>();
  int best = static_cast<int>(std::max_element(s, s + 10) - s);
  std::cout << "scores:\n";
  for (int c = 0; c < 10; ++c) {
    char line[96];
    std::snprintf(line, sizeof line, "  %d %-12s %.6f%s\n", c, kClassNames[c], s[c],
                  c == best ? "  <-" : "");
    std::cout << line;
  }
  std::cout << "prediction: " << best << " " << kClassNames[best] << "\n";
  if (trueLabel >= 0 && trueLabel < 10)
    std::cout << "true label: " << trueLabel << " " << kClassNames[trueLabel] << "\n";
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception &e) {
    std::cerr << "embed_app: " << e.what() << "\n";
    return 1;
  }
}
