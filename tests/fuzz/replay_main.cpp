/* SPDX-License-Identifier: MIT */
/*
 * Replay driver: runs a fuzz target's LLVMFuzzerTestOneInput on every file
 * named on the command line, or found (sorted, non-recursively) in the
 * directories named there.  This lets compilers without libFuzzer (gcc)
 * exercise each target on its seed corpus as an ordinary test, and replays
 * a crash artifact under a debugger.
 */

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

namespace {

bool runFile(const std::filesystem::path &path)
{
	std::ifstream f(path, std::ios::binary);
	if (!f) {
		std::fprintf(stderr, "%s: cannot open\n", path.c_str());
		return false;
	}
	std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
	/* A copy of exactly the right size, so ASan catches reads past the end. */
	auto *buf = new uint8_t[bytes.size() ? bytes.size() : 1];
	std::copy(bytes.begin(), bytes.end(), buf);
	LLVMFuzzerTestOneInput(buf, bytes.size());
	delete[] buf;
	return true;
}

} /* namespace */

int main(int argc, char **argv)
{
	namespace fs = std::filesystem;
	size_t runs = 0;
	for (int i = 1; i < argc; i++) {
		fs::path arg(argv[i]);
		std::vector<fs::path> files;
		if (fs::is_directory(arg)) {
			for (const auto &e : fs::directory_iterator(arg))
				if (e.is_regular_file())
					files.push_back(e.path());
			std::sort(files.begin(), files.end());
		} else {
			files.push_back(arg);
		}
		for (const auto &p : files) {
			if (!runFile(p))
				return 1;
			runs++;
		}
	}
	if (!runs) {
		std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...: no inputs found\n", argv[0]);
		return 1;
	}
	std::printf("%zu inputs ran without a broken invariant\n", runs);
	return 0;
}
