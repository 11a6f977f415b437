# cmake -DNM=nm -DOBJECT=file.o -DEXPECTED=symbol -P check_exports.cmake
# Fails unless OBJECT defines exactly one global symbol, EXPECTED: a runtime kernel variant's
# object must keep every Eigen and standard-library instance local (no weak, unique or other
# global definitions the linker could merge with another variant's).
execute_process(COMMAND ${NM} -g --defined-only ${OBJECT}
                OUTPUT_VARIABLE listing RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${NM} failed on ${OBJECT}")
endif()
string(REGEX MATCHALL "[^\n]+" lines "${listing}")
set(names "")
foreach(line IN LISTS lines)
  string(REGEX REPLACE "^.* " "" name "${line}")
  list(APPEND names "${name}")
endforeach()
if(NOT names STREQUAL EXPECTED)
  message(FATAL_ERROR "${OBJECT} defines the global symbols [${names}]; expected only ${EXPECTED}")
endif()
message(STATUS "${OBJECT}: only ${EXPECTED} is global")
