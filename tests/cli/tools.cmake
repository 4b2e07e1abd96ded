# The command-line tools as a user runs them (label "tools").
set(SPARSER_TINY ${SPARSER_FIXTURES_DIR}/sam_tiny)

# sparser_inspect prints exactly the official key list of each preset.
foreach(preset vit_b vit_l vit_h)
  if(EXISTS ${SPARSER_FIXTURES_DIR}/sam_${preset}_state_dict.txt)
    add_test(NAME tools.inspect_${preset}
             COMMAND bash -c "set -o pipefail; diff <($<TARGET_FILE:sparser_inspect> --preset ${preset} | grep -v '^#') <(grep -v '^#' ${SPARSER_FIXTURES_DIR}/sam_${preset}_state_dict.txt)")
    set_tests_properties(tools.inspect_${preset} PROPERTIES LABELS tools)
  endif()
endforeach()

# sparser_inspect --trainable on a config: the exact count of SAM-PARSER on the tiny neck.
add_test(NAME tools.inspect_trainable
         COMMAND bash -c "$<TARGET_FILE:sparser_inspect> --config ${CMAKE_SOURCE_DIR}/experiments/demo.toml --trainable | grep -E '^  parser +64 '")
set_tests_properties(tools.inspect_trainable PROPERTIES LABELS tools)

# sparser_inspect lists one thing: a second of --preset, --config and --checkpoint was ignored, as
# were --checkpoint-key without --checkpoint and --trainable with it; all are refused.
add_test(NAME tools.inspect_one_source
         COMMAND bash -c "i=$<TARGET_FILE:sparser_inspect>
           refused() {
             local output; output=$($i $1 2>&1)
             test $? = 2 && test \"$output\" = \"sparser_inspect: $2\" || { echo \"$1: $output\"; return 1; }
           }
           tiny=${SPARSER_TINY}/weights.pth demo=${CMAKE_SOURCE_DIR}/experiments/demo.toml
           several='give one of --preset, --config and --checkpoint, not several'
           trainable='--trainable needs a --config with a [method] table, not --checkpoint'
           refused \"--preset vit_h --checkpoint $tiny\" \"$several\" &&
           refused \"--preset vit_b --config $demo\" \"$several\" &&
           refused \"--config $demo --checkpoint $tiny\" \"$several\" &&
           refused '--preset vit_b --checkpoint-key model' '--checkpoint-key applies only with --checkpoint' &&
           refused \"--checkpoint $tiny --trainable\" \"$trainable\"")
set_tests_properties(tools.inspect_one_source PROPERTIES LABELS tools)

# Inputs that were taken for something else are refused, exit 2: a directory as the config
# (read as an empty one: ViT-B, every default), --preset custom (answered "expected ... or
# custom"), a negative --threads (ignored) or --tolerance (every output "FAIL").
add_test(NAME tools.refused_inputs
         COMMAND bash -c "dir=$(mktemp -d); trap 'rm -rf $dir' EXIT
           refused() {
             local expected=$1 output status; shift
             output=$(\"$@\" 2>&1); status=$?
             test $status = 2 && test \"$output\" = \"$expected\" || { echo \"$*: exit $status: $output\"; return 1; }
           }
           demo=${CMAKE_SOURCE_DIR}/experiments/demo.toml
           inspect=$<TARGET_FILE:sparser_inspect> parity=$<TARGET_FILE:sparser_parity>
           custom=\"unknown model preset 'custom' (expected vit_b, vit_l or vit_h; a custom model's dimensions\"
           custom=\"$custom are given by a config's [model] table)\"
           tolerance='sparser_parity: --tolerance must be a finite number >= 0'
           refused \"sparser_inspect: $dir: is a directory, not a config file\" $inspect --config $dir &&
           refused \"sparser_run: $dir: is a directory, not a config file\" $<TARGET_FILE:sparser_run> $dir --list &&
           refused \"sparser_inspect: $custom\" $inspect --preset custom &&
           refused 'sparser_run: --threads -1: must be >= 0' $<TARGET_FILE:sparser_run> $demo --threads -1 &&
           refused \"$tolerance\" $parity --tolerance -1 ${SPARSER_TINY} &&
           refused \"$tolerance\" $parity --tolerance nan ${SPARSER_TINY}")
set_tests_properties(tools.refused_inputs PROPERTIES LABELS tools)

# sparser_predict: an image and a box → mask PNGs, an overlay and IoU predictions.
add_test(NAME tools.predict
         COMMAND bash -c "set -e; out=$(mktemp -d); trap 'rm -rf $out' EXIT
           { printf 'P6\\n75 100\\n255\\n'; head -c 22500 /dev/zero; } > $out/image.ppm
           $<TARGET_FILE:sparser_predict> --config ${CMAKE_SOURCE_DIR}/experiments/demo.toml --checkpoint ${SPARSER_TINY}/weights.pth --image $out/image.ppm --box 10,20,60,90 --point 30,40,1 --multimask --out $out > $out/stdout
           grep -c iou_prediction $out/stdout | grep -qx 3
           test -s $out/overlay.png && test -s $out/mask_0_0.png && test -s $out/mask_0_2.png")
set_tests_properties(tools.predict PROPERTIES LABELS tools)
# A mask that cannot be written (a directory in its place, a full disk) is an error naming
# it, not "-> mask_0.png" and exit 0; masks are written whole or not at all.
add_test(NAME tools.predict_unwritable_output
         COMMAND bash -c "out=$(mktemp -d); trap 'rm -rf $out' EXIT
           { printf 'P6\\n75 100\\n255\\n'; head -c 22500 /dev/zero; } > $out/image.ppm; mkdir $out/mask_0.png
           $<TARGET_FILE:sparser_predict> --config ${CMAKE_SOURCE_DIR}/experiments/demo.toml --checkpoint ${SPARSER_TINY}/weights.pth --image $out/image.ppm --box 10,20,60,90 --out $out 2>&1; echo exit=$?")
set_tests_properties(tools.predict_unwritable_output PROPERTIES LABELS tools
                     PASS_REGULAR_EXPRESSION "mask_0.png: exists and is not a regular file[^\n]*\nexit=2")

# Clear errors for bad input, naming the file.
add_test(NAME tools.predict_missing_image
         COMMAND bash -c "$<TARGET_FILE:sparser_predict> --preset vit_b --checkpoint x.pth --image /nonexistent.png --box 1,2,3,4 2>&1 | grep -q '/nonexistent.png: cannot read image'")
set_tests_properties(tools.predict_missing_image PROPERTIES LABELS tools)
# Prompts that would give a meaningless mask: refused before the model is built.
add_test(NAME tools.predict_bad_prompts
         COMMAND bash -c "p='$<TARGET_FILE:sparser_predict> --preset vit_b --checkpoint x.pth --image x.png'
           $p --box nan,1,2,3 2>&1 | grep -qF -e \"--box 'nan,1,2,3': 'nan' is not a finite number\" &&
           $p --box 1,2,inf,4 2>&1 | grep -qF \"'inf' is not a finite number\" &&
           $p --box 10,2,3,4 2>&1 | grep -qF -e \"--box '10,2,3,4': expected x0,y0,x1,y1 with x0 < x1 and y0 < y1\"")
set_tests_properties(tools.predict_bad_prompts PROPERTIES LABELS tools)
# A directory that is not a fixture: exit 2, naming the missing file.
add_test(NAME tools.parity_not_a_fixture
         COMMAND bash -c "$<TARGET_FILE:sparser_parity> ${CMAKE_SOURCE_DIR}/docs 2>&1; echo exit=$?")
set_tests_properties(tools.parity_not_a_fixture PROPERTIES LABELS tools
                     PASS_REGULAR_EXPRESSION "docs/config.toml: cannot open config file\nexit=2")

# sparser_bench: every requested row as a JSON line with positive figures, over 2 rounds;
# a cached row's speed-up only where its uncached row ran too, the median of two samples their mean.
add_test(NAME tools.bench_json
         COMMAND bash -c "set -eo pipefail; $<TARGET_FILE:sparser_bench> --config ${CMAKE_SOURCE_DIR}/experiments/demo.toml --device cpu --threads 1 --repeats 1 --warmup 0 --rounds 2 --prompts-per-pass 2 --methods decoder_only+cache,parser-conv-coefficients,parser-conv-coefficients+cache --json | python3 -c \"
import json, sys
rows = {r['name']: r for r in map(json.loads, sys.stdin)}
assert set(rows) == {'encoder_forward', 'decoder_only+cache', 'parser-conv-coefficients', 'parser-conv-coefficients+cache'}, sorted(rows)
assert [n for n, r in rows.items() if 'cache_speedup' in r] == ['parser-conv-coefficients+cache'], rows
cached = rows['parser-conv-coefficients+cache']
assert len(cached['cache_speedup_samples']) == 2 and min(cached['cache_speedup_samples']) > 0, cached
assert abs(cached['cache_speedup'] - sum(cached['cache_speedup_samples']) / 2) < 1e-12 * cached['cache_speedup'], cached
for row in rows.values():
    assert all(row[k] > 0 for k in ('seconds', 'gflop', 'gemm_gflops', 'peak_rss_mb', 'efficiency')), row
    assert abs(row['efficiency'] - row['gflop'] / row['seconds'] / row['gemm_gflops']) < 1e-9 * row['efficiency'], row
assert rows['encoder_forward']['ratio_to_forward'] == 1.0
assert all(r['warmup_steps'] == 0 and r['page_faults_per_step'] >= 0 for r in rows.values()), rows
\"")
set_tests_properties(tools.bench_json PROPERTIES LABELS tools)
# --interleave: the same rows from one process, a speed-up sample per turn, no per-item peak memory.
add_test(NAME tools.bench_interleave
         COMMAND bash -c "set -eo pipefail; $<TARGET_FILE:sparser_bench> --config ${CMAKE_SOURCE_DIR}/experiments/demo.toml --device cpu --threads 1 --repeats 3 --warmup 0 --interleave --methods parser-conv-coefficients,parser-conv-coefficients+cache --json | python3 -c \"
import json, sys
rows = {r['name']: r for r in map(json.loads, sys.stdin)}
assert set(rows) == {'encoder_forward', 'parser-conv-coefficients', 'parser-conv-coefficients+cache'}, sorted(rows)
assert all('peak_rss_mb' not in r and r['seconds'] > 0 for r in rows.values()), rows
assert rows['encoder_forward']['ratio_to_forward'] == 1.0
cached = rows['parser-conv-coefficients+cache']
assert len(cached['cache_speedup_samples']) == 3 and cached['cache_speedup'] == sorted(cached['cache_speedup_samples'])[1], cached
assert all(r['warmup_steps'] == 0 and r['page_faults_per_step'] >= 0 for r in rows.values()), rows
\"")
set_tests_properties(tools.bench_interleave PROPERTIES LABELS tools)
# Warm-up goes on while a step still page-faults, so timed steps are the steady state; with
# --warmup 0 the first step is timed, and the table says it touched new memory.
add_test(NAME tools.bench_warmup_until_steady
         COMMAND bash -c "set -eo pipefail; b='$<TARGET_FILE:sparser_bench> --config ${CMAKE_SOURCE_DIR}/experiments/demo.toml --image-size 1024 --device cpu --threads 1 --repeats 1 --methods none'
           $b --warmup 0 | grep -E '^    timed steps still touched new memory: [0-9]+ page faults a step after 0 warm-up steps'
           $b --warmup 1 --json | python3 -c \"
import json, sys
row = json.loads(sys.stdin.readlines()[-1])
assert row['warmup_steps'] >= 1 and row['page_faults_per_step'] <= 1024, row
\"")
set_tests_properties(tools.bench_warmup_until_steady PROPERTIES LABELS tools)
add_test(NAME tools.bench_interleave_with_rounds
         COMMAND bash -c "$<TARGET_FILE:sparser_bench> --config ${CMAKE_SOURCE_DIR}/experiments/demo.toml --interleave --rounds 2 2>&1; echo exit=$?")
set_tests_properties(tools.bench_interleave_with_rounds PROPERTIES LABELS tools
                     PASS_REGULAR_EXPRESSION "--interleave measures in one process: use --repeats, not --rounds\nexit=2")
add_test(NAME tools.bench_bad_rounds
         COMMAND bash -c "$<TARGET_FILE:sparser_bench> --config ${CMAKE_SOURCE_DIR}/experiments/demo.toml --rounds 0 2>&1; echo exit=$?")
set_tests_properties(tools.bench_bad_rounds PROPERTIES LABELS tools
                     PASS_REGULAR_EXPRESSION "--rounds must be at least 1\nexit=2")
# Counts that leave nothing to measure are refused before measuring (--repeats 0 crashed each child).
add_test(NAME tools.bench_bad_counts
         COMMAND bash -c "b='$<TARGET_FILE:sparser_bench> --config ${CMAKE_SOURCE_DIR}/experiments/demo.toml'
           refused() {
             local output; output=$($b --methods none $1 2>&1)
             test $? = 2 && test \"$output\" = \"sparser_bench: $2\" || { echo \"$1: $output\"; return 1; }
           }
           refused '--repeats 0' '--repeats must be at least 1' &&
           refused '--repeats -2' '--repeats must be at least 1' &&
           refused '--warmup -1' '--warmup must be 0 or more' && refused '--boxes 0' '--boxes must be at least 1' &&
           refused '--loads 0' '--loads must be at least 1'")
set_tests_properties(tools.bench_bad_counts PROPERTIES LABELS tools)
# --shards is opened before any measurement: a wrong path, or a (hand-made) split without
# samples (which crashed the sample loading with SIGFPE), is reported at once, without a row
# measured.
add_test(NAME tools.bench_bad_shards
         COMMAND bash -c "dir=$(mktemp -d); trap 'rm -rf $dir' EXIT
           b='$<TARGET_FILE:sparser_bench> --config ${CMAKE_SOURCE_DIR}/experiments/demo.toml --repeats 1 --warmup 0'
           refused() {
             local output; output=$($b --shards $1 2>&1)
             test $? = 2 && test \"$output\" = \"sparser_bench: $1: $2\" || { echo \"$1: $output\"; return 1; }
           }
           printf '%s' '{\"format\": \"sparser-manifest\", \"schema_version\": 1, \"dataset\": \"d\",' \\
             ' \"split\": \"val\", \"split_seed\": 0, \"converter_version\": \"hand-made\",' \\
             ' \"class_names\": {}, \"num_samples\": 0, \"shards\": []}' > $dir/empty.manifest.json &&
           refused $dir/missing.manifest.json 'cannot open manifest' &&
           refused $dir/empty.manifest.json 'the split has no samples to load'")
set_tests_properties(tools.bench_bad_shards PROPERTIES LABELS tools)
# A misspelt --methods name is refused, listing the names, instead of selecting nothing.
add_test(NAME tools.bench_unknown_method
         COMMAND bash -c "b='$<TARGET_FILE:sparser_bench> --config ${CMAKE_SOURCE_DIR}/experiments/demo.toml'
                          $b --methods decoder_only,parser_conv 2>&1; echo exit=$?")
set_tests_properties(tools.bench_unknown_method PROPERTIES LABELS tools PASS_REGULAR_EXPRESSION
  "--methods: unknown name \"parser_conv\"; the names are none [^\n]* parser-conv-coefficients [^\n]*\nexit=2")
# Under mpirun only the gradient all-reduce is timed: an option of the other measurements, or
# a '+cache' row, is refused rather than ignored.
list(JOIN SPARSER_MPIEXEC_FLAGS " " SPARSER_BENCH_MPIEXEC_FLAGS)
add_test(NAME tools.bench_mpirun_refuses_what_it_would_ignore
         COMMAND bash -c "bench='$<TARGET_FILE:sparser_bench> --config ${CMAKE_SOURCE_DIR}/experiments/demo.toml'
           m=\"${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${SPARSER_BENCH_MPIEXEC_FLAGS} $bench\"
           refused() {
             local output; output=$($m $1 2>&1)
             test $? != 0 && grep -qF -e \"$2\" <<< \"$output\" || { echo \"$1: $output\"; return 1; }
           }
           all_reduce_only='does not apply under mpirun, which times only the gradient all-reduce'
           refused '--shards x.manifest.json' \"--shards $all_reduce_only\" &&
           refused '--repeats 5' \"--repeats $all_reduce_only\" &&
           refused '--methods decoder_only+cache' \"name methods without '+cache'\"")
set_tests_properties(tools.bench_mpirun_refuses_what_it_would_ignore PROPERTIES LABELS tools PROCESSORS 2 TIMEOUT 120)
# Under mpirun: each method's all-reduce, timed by both ranks in step, one row per method.
add_test(NAME tools.bench_mpirun_all_reduce
         COMMAND bash -c "set -eo pipefail; ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${SPARSER_BENCH_MPIEXEC_FLAGS} $<TARGET_FILE:sparser_bench> --config ${CMAKE_SOURCE_DIR}/experiments/demo.toml --device cpu --threads 1 --methods decoder_only,parser-conv-coefficients,lora --json | python3 -c \"
import json, sys
rows = {r['name']: r for r in map(json.loads, sys.stdin)}
assert set(rows) == {'allreduce_decoder_only', 'allreduce_parser-conv-coefficients', 'allreduce_lora'}, sorted(rows)
assert all(r['ranks'] == 2 and r['bytes'] > 0 and r['seconds'] > 0 for r in rows.values()), rows
assert rows['allreduce_parser-conv-coefficients']['bytes'] > rows['allreduce_decoder_only']['bytes'], rows
\"")
set_tests_properties(tools.bench_mpirun_all_reduce PROPERTIES LABELS tools PROCESSORS 2 TIMEOUT 120)
add_test(NAME tools.bench_bad_precision
         COMMAND bash -c "$<TARGET_FILE:sparser_bench> --config ${CMAKE_SOURCE_DIR}/experiments/demo.toml --precision fp16 2>&1; echo exit=$?")
set_tests_properties(tools.bench_bad_precision PROPERTIES LABELS tools
                     PASS_REGULAR_EXPRESSION "--precision must be fp32 or bf16, not \"fp16\"\nexit=2")
if(NOT SPARSER_WITH_CUDA)
  add_test(NAME tools.bench_cuda_without_cuda
           COMMAND bash -c "$<TARGET_FILE:sparser_bench> --config ${CMAKE_SOURCE_DIR}/experiments/demo.toml --device cuda 2>&1; echo exit=$?")
  set_tests_properties(tools.bench_cuda_without_cuda PROPERTIES LABELS tools
                       PASS_REGULAR_EXPRESSION "--device cuda: this build has no CUDA LibTorch, or no GPU is visible\nexit=2")
endif()

# LibTorch's pip wheels export their own statically linked copies of libstdc++'s
# std::filesystem (pytorch/pytorch#133437); libstdc++ must come first in every program's
# library search order, or such a copy answers our calls (remove_all crashed in one).
foreach(program sparser_run sparser_bench sparser_torch_tests)
  add_test(NAME tools.libstdcxx_before_libtorch_${program}
           COMMAND bash -c "readelf -d $<TARGET_FILE:${program}> | grep -oE 'lib(stdc\\+\\+|torch[a-z_]*|c10[a-z_]*)\\.so' | head -1 | grep -qx 'libstdc++.so'")
  set_tests_properties(tools.libstdcxx_before_libtorch_${program} PROPERTIES LABELS tools)
endforeach()
