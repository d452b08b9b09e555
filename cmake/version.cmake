# The version apsis-exportd reports (`apsis-exportd --version`) comes from project(VERSION) in the top
# CMakeLists.txt, the one place it is set; this writes it into a header for the cli.
#
#   apsis_version_header(<target>)  gives <target> the include "apsis_version.hpp"
set(APSIS_VERSION_DIR ${CMAKE_BINARY_DIR}/generated/version)
configure_file(${CMAKE_CURRENT_LIST_DIR}/apsis_version.hpp.in ${APSIS_VERSION_DIR}/apsis_version.hpp @ONLY)

function(apsis_version_header target)
  target_include_directories(${target} PRIVATE ${APSIS_VERSION_DIR})
endfunction()
