# ctest engine.installed_example: installs this build's engine component into a fresh
# prefix, checks that the library links nothing of LibTorch, OpenBLAS or CLI11, builds
# examples/ against the installed package (CMake) and the C example against mapgate.pc
# (pkg-config), and checks that all print what the engine itself computes (expected.txt).
# -D: BUILD_DIR SOURCE_DIR WORK_DIR FIXTURE GENERATOR CXX FLAGS (compiler flags, may be empty)
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " command "${ARGN}")
    message(FATAL_ERROR "`${command}` failed (${rc}):\n${out}\n${err}")
  endif()
  string(STRIP "${out}" out)
  set(out "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/data)
set(prefix ${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} --component mapgate_engine)

# What the installed library needs at run time and what the package asks its users to link.
file(GLOB_RECURSE libs ${prefix}/*libmapgate.so)
list(LENGTH libs n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "expected one libmapgate.so under ${prefix}, found ${n}: ${libs}")
endif()
get_filename_component(libdir ${libs} DIRECTORY)
run(ldd ${libs})
set(needed "${out}")
file(GLOB_RECURSE targets ${prefix}/*mapgateTargets*.cmake)
foreach(file ${targets})
  file(READ ${file} text)
  string(APPEND needed "${text}")
endforeach()
string(REGEX REPLACE "\\(0x[0-9a-f]+\\)" "" needed "${needed}")  # ldd's load addresses
string(TOLOWER "${needed}" needed)
foreach(banned torch c10 openblas blas cli11 gomp)
  if(needed MATCHES "${banned}")
    message(FATAL_ERROR "the installed engine mentions ${banned} (ldd or mapgateTargets*.cmake):\n${needed}")
  endif()
endforeach()

run(${FIXTURE} ${WORK_DIR}/data)
file(READ ${WORK_DIR}/data/expected.txt expected)
string(STRIP "${expected}" expected)
set(example_args ${WORK_DIR}/data/tiny.bin ${WORK_DIR}/data/records.bin 2)

# CMake package: find_package(mapgate) + mapgate::engine.
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples -B ${WORK_DIR}/examples -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_C_FLAGS=${FLAGS}" "-DCMAKE_CXX_FLAGS=${FLAGS}")
run(${CMAKE_COMMAND} --build ${WORK_DIR}/examples)
foreach(example classify classify_c)
  run(${WORK_DIR}/examples/${example} ${example_args})
  if(NOT out STREQUAL expected)
    message(FATAL_ERROR "${example} printed \"${out}\", the engine computes \"${expected}\"")
  endif()
endforeach()

# pkg-config: the C example compiled by hand.
find_program(PKG_CONFIG pkg-config)
find_program(C_COMPILER NAMES cc gcc clang)
if(PKG_CONFIG AND C_COMPILER)
  file(GLOB_RECURSE pc_files ${prefix}/*mapgate.pc)
  get_filename_component(pc_dir ${pc_files} DIRECTORY)
  set(ENV{PKG_CONFIG_PATH} ${pc_dir})
  run(${PKG_CONFIG} --cflags --libs mapgate)
  separate_arguments(flags UNIX_COMMAND "${out}")
  separate_arguments(extra UNIX_COMMAND "${FLAGS}")
  run(${C_COMPILER} -std=c99 -pedantic -Wall -Werror ${extra} ${SOURCE_DIR}/examples/classify.c ${flags}
      -Wl,-rpath,${libdir} -o ${WORK_DIR}/classify_pkgconfig)
  run(${WORK_DIR}/classify_pkgconfig ${example_args})
  if(NOT out STREQUAL expected)
    message(FATAL_ERROR "classify.c via pkg-config printed \"${out}\", the engine computes \"${expected}\"")
  endif()
else()
  message(STATUS "pkg-config or a C compiler not found: the pkg-config build is skipped")
endif()
message(STATUS "installed engine OK: ${expected}")
