#!/usr/bin/env bash
# Install test: proves an installed fgc works for an outside project.
#   install_and_build.sh BUILD_DIR SOURCE_DIR [GENERATOR] [CXX_COMPILER]
# 1. cmake --install BUILD_DIR into a fresh temporary prefix (BUILD_DIR must be built already);
# 2. checks the installed files and that nothing in lib/cmake/fgc points back into the build;
# 3. configures samples/embed_app in a temporary build dir with -DCMAKE_PREFIX_PATH=<prefix>
#    (so find_package(fgc) finds the installed package) and builds it, which runs the installed
#    fgc through fgc_add_model;
# 4. runs embed_app on the committed image and checks it prints 10 scores and a class name; when
#    Debian's dataset-fashion-mnist is installed, also reads the same image from the IDX test set
#    and checks the scores are identical and the true label is printed.
# Exits 0 when all holds; the temporary directory is removed either way.
set -euo pipefail
build="$(cd "$1" && pwd)"
src="$(cd "$2" && pwd)"
generator="${3:-Ninja}"
cxx="${4:-}"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/fgc-install-test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
app="$tmp/app"
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" > "$tmp/install.log" || { cat "$tmp/install.log"; fail "install"; }
for f in bin/fgc lib/libfgc_runtime.a include/fgc/runtime/kernels.h include/fgc/runtime/model.h \
         include/fgc/runtime/npy.h lib/cmake/fgc/fgcConfig.cmake lib/cmake/fgc/fgcConfigVersion.cmake \
         lib/cmake/fgc/fgcTargets.cmake lib/cmake/fgc/FgcAddModel.cmake; do
  [[ -e "$prefix/$f" ]] || fail "not installed: $f"
done
if grep -rl -e "$build" -e "$src" "$prefix/lib/cmake/fgc" > "$tmp/leaks.txt"; then
  cat "$tmp/leaks.txt" >&2
  fail "installed package files refer to the build or source tree"
fi
"$prefix/bin/fgc" --help > /dev/null || fail "installed fgc does not run"

echo "== configure and build samples/embed_app against $prefix"
cfg=(-S "$src/samples/embed_app" -B "$app" -G "$generator" -DCMAKE_PREFIX_PATH="$prefix")
[[ -n "$cxx" ]] && cfg+=(-DCMAKE_CXX_COMPILER="$cxx")
cmake "${cfg[@]}" > "$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; fail "configure"; }
fgc_dir="$(sed -n 's/^fgc_DIR:PATH=//p' "$app/CMakeCache.txt")"
[[ "$fgc_dir" == "$prefix/lib/cmake/fgc" ]] || fail "find_package(fgc) found '$fgc_dir', not the test prefix"
cmake --build "$app" -j 2 > "$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "build"; }

classes='(T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot)'
check_output() { # FILE: 10 score lines and a prediction naming a class
  local n
  n="$(grep -Ec '^  [0-9] .* -?[0-9]+\.[0-9]{6}' "$1" || true)"
  [[ "$n" == 10 ]] || { cat "$1"; fail "expected 10 class scores, got $n"; }
  grep -Eq "^prediction: [0-9] $classes\$" "$1" || { cat "$1"; fail "no predicted class name"; }
}

echo "== embed_app ankle_boot.pgm"
rc=0; "$app/embed_app" "$src/samples/embed_app/ankle_boot.pgm" > "$tmp/pgm.out" || rc=$?
[[ $rc == 0 ]] || { cat "$tmp/pgm.out"; fail "embed_app exited $rc"; }
cat "$tmp/pgm.out"
check_output "$tmp/pgm.out"

idx=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
if [[ -r "$idx" ]] && grep -q EMBED_APP_HAVE_ZLIB -r "$app" --include=flags.make --include=build.ninja 2>/dev/null; then
  echo "== embed_app $idx 0"
  rc=0; "$app/embed_app" "$idx" 0 > "$tmp/idx.out" || rc=$?
  [[ $rc == 0 ]] || { cat "$tmp/idx.out"; fail "embed_app (IDX) exited $rc"; }
  check_output "$tmp/idx.out"
  diff <(grep '^  [0-9]' "$tmp/pgm.out") <(grep '^  [0-9]' "$tmp/idx.out") \
    || fail "IDX image 0 and ankle_boot.pgm score differently"
  grep -q '^true label: 9 Ankle boot$' "$tmp/idx.out" || { cat "$tmp/idx.out"; fail "no true label"; }
else
  echo "(dataset-fashion-mnist or zlib not available: IDX check skipped)"
fi
echo "install test passed"
