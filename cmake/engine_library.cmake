# The installable engine (docs/engine-library.md): libmapgate, a shared library whose ABI
# is the C interface include/mapgate/mapgate.h (mapgate.hpp wraps it for C++), with a
# CMake package (find_package(mapgate) -> mapgate::engine) and a pkg-config file. It wraps
# the static mapgate_engine and exports only the mapgate_* functions: no LibTorch,
# OpenBLAS or CLI11 reaches it or its users.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
set(MAPGATE_ENGINE_VERSION 0.1.0)

# The static engine goes into the shared library, so it is compiled as PIC; without
# semantic interposition GCC still inlines and calls its functions directly, as before.
set_target_properties(mapgate_engine PROPERTIES POSITION_INDEPENDENT_CODE ON)
target_compile_options(mapgate_engine PRIVATE -fno-semantic-interposition)
add_library(mapgate_engine_shared SHARED src/api/c_api.cpp)
add_library(mapgate::engine ALIAS mapgate_engine_shared)
target_include_directories(mapgate_engine_shared PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
                                                        $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_libraries(mapgate_engine_shared PRIVATE mapgate_engine)
target_compile_definitions(mapgate_engine_shared PRIVATE MAPGATE_BUILDING_LIBRARY
                           MAPGATE_VERSION="${MAPGATE_ENGINE_VERSION}")
set_target_properties(mapgate_engine_shared PROPERTIES
  OUTPUT_NAME mapgate EXPORT_NAME engine VERSION ${MAPGATE_ENGINE_VERSION} SOVERSION 0
  CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
# The static engine's own symbols stay inside the .so; a missing symbol fails the link.
target_link_options(mapgate_engine_shared PRIVATE -Wl,--exclude-libs,ALL -Wl,--no-undefined)

# --- install: cmake --install build --prefix P [--component mapgate_engine] ---
set(MAPGATE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mapgate)
install(TARGETS mapgate_engine_shared EXPORT mapgateTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT mapgate_engine)
install(FILES include/mapgate/mapgate.h include/mapgate/mapgate.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/mapgate COMPONENT mapgate_engine)
install(EXPORT mapgateTargets NAMESPACE mapgate:: DESTINATION ${MAPGATE_CMAKE_DIR} COMPONENT mapgate_engine)
configure_package_config_file(cmake/mapgateConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/mapgateConfig.cmake
                              INSTALL_DESTINATION ${MAPGATE_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/mapgateConfigVersion.cmake
                                 VERSION ${MAPGATE_ENGINE_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/mapgateConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/mapgateConfigVersion.cmake
        DESTINATION ${MAPGATE_CMAKE_DIR} COMPONENT mapgate_engine)
# pkg-config: the prefix is found from the .pc file's own place, so --prefix at install
# time works as well as CMAKE_INSTALL_PREFIX at configure time.
file(RELATIVE_PATH MAPGATE_PC_TO_PREFIX /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
string(REGEX REPLACE "/$" "" MAPGATE_PC_TO_PREFIX "${MAPGATE_PC_TO_PREFIX}")
configure_file(cmake/mapgate.pc.in ${CMAKE_CURRENT_BINARY_DIR}/mapgate.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/mapgate.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT mapgate_engine)

if(MAPGATE_BUILD_TESTS)
  enable_testing()
  find_package(GTest REQUIRED)
  include(GoogleTest)
  # The C interface through the shared library; mapgate_engine only writes tiny weight files.
  file(GLOB MAPGATE_API_TEST_SOURCES CONFIGURE_DEPENDS tests/api/test_*.cpp)
  add_executable(mapgate_api_tests ${MAPGATE_API_TEST_SOURCES})
  target_link_libraries(mapgate_api_tests PRIVATE mapgate::engine mapgate_engine GTest::gtest_main)
  gtest_discover_tests(mapgate_api_tests DISCOVERY_TIMEOUT 60)
  # examples/ built against a temporary install of this build (tests/api/check_install.cmake).
  add_executable(mapgate_api_fixture tests/api/write_fixture.cpp)
  target_link_libraries(mapgate_api_fixture PRIVATE mapgate_engine)
  add_dependencies(mapgate_api_tests mapgate_api_fixture)
  # Under MAPGATE_SANITIZE the library needs the sanitizer runtimes first: so do the examples.
  set(MAPGATE_EXAMPLE_FLAGS "")
  if(MAPGATE_SANITIZE)
    set(MAPGATE_EXAMPLE_FLAGS "-fsanitize=address,undefined")
  endif()
  add_test(NAME engine.installed_example
           COMMAND ${CMAKE_COMMAND} -DBUILD_DIR=${CMAKE_BINARY_DIR} -DSOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}
                   -DWORK_DIR=${CMAKE_BINARY_DIR}/install_check -DFIXTURE=$<TARGET_FILE:mapgate_api_fixture>
                   -DGENERATOR=${CMAKE_GENERATOR} -DCXX=${CMAKE_CXX_COMPILER}
                   "-DFLAGS=${MAPGATE_EXAMPLE_FLAGS}"
                   -P ${CMAKE_CURRENT_SOURCE_DIR}/tests/api/check_install.cmake)
  # Optional: the engine against ONNX Runtime on random weights and images, where
  # `npm install --ignore-scripts onnxruntime-node` was run in MAPGATE_ORT_DIR (docs/perf.md).
  set(MAPGATE_ORT_DIR ${CMAKE_BINARY_DIR}/ort CACHE PATH "directory holding node_modules/onnxruntime-node")
  find_program(MAPGATE_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  find_program(MAPGATE_NODE node)
  if(EXISTS ${MAPGATE_ORT_DIR}/node_modules/onnxruntime-node AND MAPGATE_NODE AND MAPGATE_PYTHON3)
    add_test(NAME engine.ort_anchor
             COMMAND ${MAPGATE_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/tools/ort_check.py --random
                     --lib $<TARGET_FILE:mapgate_engine_shared> --ort ${MAPGATE_ORT_DIR})
  endif()
endif()
