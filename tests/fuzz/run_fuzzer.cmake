# cmake -DFUZZER=<binary> -DCORPUS=<checked-in corpus> -DWORK=<scratch dir> -DRUNS=<n>
#       -P run_fuzzer.cmake
# 1. Replays every file of the checked-in corpus (each must run clean).
# 2. Fuzzes deterministically: -seed=1, -runs=RUNS, starting from the corpus; new inputs go to
#    WORK/new (never into the checked-in corpus), a crashing input to WORK/. Addresses take part
#    in libFuzzer's comparison tracing and in ASan's layout, and the corpus is re-read on a
#    timer, so the run is made reproducible with -use_cmp=0 -reload=0 and, where the system
#    allows it, address randomization off (setarch -R).
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
set(norandom)
find_program(SETARCH setarch)
if(SETARCH)
  execute_process(COMMAND ${SETARCH} x86_64 -R true RESULT_VARIABLE setarch_rc)
  if(setarch_rc EQUAL 0)
    set(norandom ${SETARCH} x86_64 -R)
  endif()
endif()
if(NOT norandom)
  message(STATUS "setarch -R unavailable: address randomization stays on (coverage may vary)")
endif()
execute_process(COMMAND ${norandom} ${FUZZER} -seed=1 -use_cmp=0 -reload=0 -runs=${RUNS}
                        -max_len=4096 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=${WORK}/ ${WORK}/new ${CORPUS}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fuzzing failed (exit ${rc}); the input is in ${WORK}/")
endif()
