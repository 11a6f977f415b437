#!/usr/bin/env bash
# The MNIST recipe (scripts/mnist: RMSprop, batch 64, validation_split 0.2, shuffle seed 1) for one
# epoch on Fashion-MNIST's 60,000 images, trained once by `fgc run ... fit` (JIT) and once by the
# generated C++ of samples/mnist_train (AOT): the two saved model files must be byte-identical
# (same weights, optimizer slots and counters), and so must the test accuracies.
#   mnist_recipe_jit_vs_aot.sh FGC SAMPLE_MNIST_TRAIN MODEL
set -euo pipefail
fgc="$1"; aot="$2"; model="$3"
data=/usr/share/datasets/fashion-mnist
if [[ ! -f $data/train-images-idx3-ubyte.gz ]]; then
  echo "SKIP: Fashion-MNIST is not installed (Debian dataset-fashion-mnist)"; exit 0
fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
scale=0.0039215686274509803 # 1 / 255.0, as the AOT sample scales its pixels
"$fgc" run "$model" fit --x input_1=$data/train-images-idx3-ubyte.gz --x-scale $scale \
  --y dense_2=$data/train-labels-idx1-ubyte.gz --epochs 1 --batch-size 64 \
  --validation-split 0.2 --shuffle-seed 1 --verbose 2 -o "$tmp/jit.fgcm"
"$aot" --epochs 1 --out "$tmp/aot" > "$tmp/aot.txt"
cat "$tmp/aot.txt"
jitEval="$("$fgc" run "$tmp/jit.fgcm" evaluate --x input_1=$data/t10k-images-idx3-ubyte.gz \
  --x-scale $scale --y dense_2=$data/t10k-labels-idx1-ubyte.gz --verbose 0)"
echo "$jitEval"
jitAcc="$(sed -n 's/^accuracy: //p' <<<"$jitEval")"
aotAcc="$(sed -n 's/^Test Acc: //p' "$tmp/aot.txt")"
echo "test accuracy: JIT $jitAcc, AOT $aotAcc"
cmp "$tmp/jit.fgcm" "$tmp/aot/mnist_mlp_trained.fgcm"
awk -v a="$jitAcc" -v b="$aotAcc" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 1e-6) }'
echo "JIT and AOT trained models are identical"
