# The version, set once in project(VERSION ...), for the code: link apsis_version and
# #include "apsis_version.hpp" (APSIS_VERSION, apsis::kVersion). The package takes the same number.
configure_file(${CMAKE_SOURCE_DIR}/cmake/apsis_version.hpp.in ${CMAKE_BINARY_DIR}/generated/apsis_version.hpp @ONLY)
add_library(apsis_version INTERFACE)
target_include_directories(apsis_version INTERFACE ${CMAKE_BINARY_DIR}/generated)
