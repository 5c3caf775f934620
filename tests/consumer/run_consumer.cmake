# Configures, builds and runs tests/consumer against exsal, either installed (find_package) or
# as a subdirectory. Called by CTest: cmake -DEXSAL_SOURCE_DIR=.. -DWORK_DIR=.. -DMODE=.. -P this
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGV}\n${out}\n${err}")
  endif()
endfunction()

set(consumer_src "${EXSAL_SOURCE_DIR}/tests/consumer")
if(MODE STREQUAL "find_package")
  set(prefix "${WORK_DIR}/prefix")
  file(REMOVE_RECURSE "${WORK_DIR}/exsal-build" "${prefix}" "${WORK_DIR}/fp-build")
  run(${CMAKE_COMMAND} -S "${EXSAL_SOURCE_DIR}" -B "${WORK_DIR}/exsal-build" -DEXSAL_BUILD_TESTS=OFF
      -DEXSAL_BUILD_EXAMPLES=OFF -DEXSAL_BUILD_BENCHMARKS=OFF "-DCMAKE_INSTALL_PREFIX=${prefix}")
  run(${CMAKE_COMMAND} --install "${WORK_DIR}/exsal-build")
  run(${CMAKE_COMMAND} -S "${consumer_src}" -B "${WORK_DIR}/fp-build" -DCMAKE_BUILD_TYPE=Release
      "-DCMAKE_PREFIX_PATH=${prefix}")
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/fp-build")
  run("${WORK_DIR}/fp-build/consumer")
elseif(MODE STREQUAL "add_subdirectory")
  file(REMOVE_RECURSE "${WORK_DIR}/sub-build")
  run(${CMAKE_COMMAND} -S "${consumer_src}" -B "${WORK_DIR}/sub-build" -DCMAKE_BUILD_TYPE=Release
      "-DEXSAL_SUBDIRECTORY=${EXSAL_SOURCE_DIR}")
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/sub-build")
  run("${WORK_DIR}/sub-build/consumer")
else()
  message(FATAL_ERROR "MODE must be find_package or add_subdirectory")
endif()
