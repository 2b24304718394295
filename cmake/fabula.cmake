# Helpers shared by the build: one library per src/<layer>, one test program per tests/<layer>.

set(FABULA_ALL_LAYERS "" CACHE INTERNAL "")

# fabula_layer(name deps...): src/<name>/**/*.cpp -> static library fabula_<name>.
# A layer with no sources yet becomes an INTERFACE library, so later layers can name it.
function(fabula_layer name)
  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${name}/*.cpp)
  if(sources)
    add_library(fabula_${name} STATIC ${sources})
    target_include_directories(fabula_${name} PUBLIC ${CMAKE_SOURCE_DIR}/src ${HTTPLIB_INCLUDE_DIR})
    target_link_libraries(fabula_${name} PUBLIC ${ARGN})
  else()
    add_library(fabula_${name} INTERFACE)
    target_include_directories(fabula_${name} INTERFACE ${CMAKE_SOURCE_DIR}/src ${HTTPLIB_INCLUDE_DIR})
    target_link_libraries(fabula_${name} INTERFACE ${ARGN})
  endif()
  set(FABULA_ALL_LAYERS ${FABULA_ALL_LAYERS} fabula_${name} CACHE INTERNAL "")
endfunction()

# fabula_test_dir(layer): tests/<layer>/*.cpp -> one GoogleTest program, tests labelled "fast".
# Tests whose name contains "Slow" are labelled "slow" and skipped by default (scripts/test --slow).
function(fabula_test_dir layer)
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${layer}/*.cpp)
  if(NOT sources)
    return()
  endif()
  add_executable(test_${layer} ${sources})
  target_link_libraries(test_${layer} PRIVATE ${FABULA_ALL_LAYERS} GTest::gtest GTest::gtest_main)
  target_include_directories(test_${layer} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_compile_definitions(test_${layer} PRIVATE
    FABULA_TEST_DATA="${CMAKE_SOURCE_DIR}/tests/data"
    FABULA_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    FABULA_BINARY="${CMAKE_BINARY_DIR}/fabula")
  add_dependencies(test_${layer} fabula)
  gtest_discover_tests(test_${layer}
    TEST_FILTER "-*Slow*"
    PROPERTIES LABELS "fast;${layer}"
      ENVIRONMENT "FABULA_BINARY=${CMAKE_BINARY_DIR}/fabula;FABULA_HOME=${CMAKE_SOURCE_DIR}"
    DISCOVERY_TIMEOUT 60)
  gtest_discover_tests(test_${layer}
    TEST_FILTER "*Slow*"
    TEST_SUFFIX ".slow"
    PROPERTIES LABELS "slow;${layer}" ENVIRONMENT "FABULA_HOME=${CMAKE_SOURCE_DIR}"
    DISCOVERY_TIMEOUT 60)
endfunction()
