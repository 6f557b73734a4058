# cmake -DFUZZER=<binary> -DCORPUS=<checked-in corpus> -DWORK=<scratch dir> -DRUNS=<n>
#       -P run_fuzzer.cmake
# 1. Replays every file of the checked-in corpus (each must run clean).
# 2. Fuzzes deterministically: -seed=1, -runs=RUNS, starting from the corpus; new inputs go to
#    WORK/new (never into the checked-in corpus), a crashing input to WORK/.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/new)
file(GLOB seeds ${CORPUS}/*)
list(LENGTH seeds count)
if(count EQUAL 0)
  message(FATAL_ERROR "no seed corpus in ${CORPUS}")
endif()
execute_process(COMMAND ${FUZZER} -artifact_prefix=${WORK}/ ${seeds} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "replaying ${CORPUS} failed (exit ${rc})")
endif()
message(STATUS "replayed ${count} corpus files")
execute_process(COMMAND ${FUZZER} -seed=1 -runs=${RUNS} -max_len=4096 -rss_limit_mb=2048
                        -print_final_stats=1 -artifact_prefix=${WORK}/ ${WORK}/new ${CORPUS}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fuzzing failed (exit ${rc}); the input is in ${WORK}/")
endif()
