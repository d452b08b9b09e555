# One static library per daemon/ folder, so the build enforces the layers: a folder sees the headers of
# exactly the folders it links, and an include from a folder it does not link fails to compile.
#
# Headers are included as "folder/file.hpp" from the daemon/ root. A shared include root (daemon/) would
# let every file see every folder, so each folder gets an include root of its own in the build tree:
# ${CMAKE_BINARY_DIR}/include/<folder>/<folder> is a symbolic link to daemon/<folder>, and
# ${CMAKE_BINARY_DIR}/include/<folder> is the target's PUBLIC include directory.
#
#   apsis_module(<folder> SOURCES a.cpp b.cpp
#                PUBLIC   <targets whose headers this folder's headers include>
#                PRIVATE  <targets only this folder's .cpp files include>)
function(apsis_module folder)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "" "SOURCES;PUBLIC;PRIVATE")
  set(root ${CMAKE_BINARY_DIR}/include/${folder})
  file(MAKE_DIRECTORY ${root})
  file(CREATE_LINK ${CMAKE_SOURCE_DIR}/daemon/${folder} ${root}/${folder} SYMBOLIC)

  add_library(apsis_${folder} STATIC ${ARG_SOURCES})
  target_include_directories(apsis_${folder} PUBLIC ${root})
  # Every translation unit that sees Asio must agree on this (one definition rule), so it travels with
  # the headers to every consumer.
  target_compile_definitions(apsis_${folder} PUBLIC BOOST_ASIO_NO_DEPRECATED)
  target_link_libraries(apsis_${folder} PUBLIC ${ARG_PUBLIC} PRIVATE ${ARG_PRIVATE})
endfunction()
