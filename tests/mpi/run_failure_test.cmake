# A rank killed mid-training: the job ends non-zero within LIMIT seconds with mpirun naming the
# rank, and the checkpoint saved before the crash resumes on another number of ranks.
#   cmake -DMPIEXEC=... -DNPFLAG=-n -DFLAGS="..." -DEXE=... -DDIR=... -DLIMIT=60
#         -P run_failure_test.cmake
separate_arguments(FLAGS)
string(TIMESTAMP t0 "%s")
execute_process(
  COMMAND ${MPIEXEC} ${NPFLAG} 3 ${FLAGS} ${EXE} crash ${DIR}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT ${LIMIT})
string(TIMESTAMP t1 "%s")
math(EXPR elapsed "${t1} - ${t0}")
message(STATUS "crash run: exit ${rc} after ${elapsed} s\n${out}\n${err}")
if(rc MATCHES "timeout" OR elapsed GREATER_EQUAL ${LIMIT})
  message(FATAL_ERROR "the job with a dead rank did not end within ${LIMIT} s (${rc})")
endif()
if(rc EQUAL 0)
  message(FATAL_ERROR "the job with a dead rank exited 0")
endif()
if(NOT "${out}${err}" MATCHES "rank 1")
  message(FATAL_ERROR "the job's output does not name rank 1")
endif()
execute_process(
  COMMAND ${MPIEXEC} ${NPFLAG} 2 ${FLAGS} ${EXE} resume ${DIR}
  RESULT_VARIABLE rc2 OUTPUT_VARIABLE out2 ERROR_VARIABLE err2 TIMEOUT ${LIMIT})
message(STATUS "resume run: exit ${rc2}\n${out2}\n${err2}")
if(NOT rc2 EQUAL 0)
  message(FATAL_ERROR "resuming on 2 ranks failed (${rc2})")
endif()
