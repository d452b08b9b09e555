# Turns SCHEMA_DIR/NNN_*.sql into a C++ header OUT: an array of {version, sql} in version order, in
# namespace NAMESPACE (default apsis::store::schema). One header per backend: schema/*.sql is SQLite's,
# schema/postgresql/*.sql PostgreSQL's.
if(NOT NAMESPACE)
  set(NAMESPACE apsis::store::schema)
endif()
file(GLOB files ${SCHEMA_DIR}/*.sql)
list(SORT files)
file(RELATIVE_PATH source_dir ${CMAKE_CURRENT_LIST_DIR}/.. ${SCHEMA_DIR})
set(body "// Generated from ${source_dir}/*.sql by cmake/embed_schema.cmake. Do not edit.\n#pragma once\n#include <array>\n#include <string_view>\nnamespace ${NAMESPACE} {\nstruct Migration { int version; std::string_view sql; };\ninline constexpr std::array migrations{\n")
foreach(f ${files})
  get_filename_component(name ${f} NAME)
  string(REGEX MATCH "^[0-9]+" version ${name})
  math(EXPR version "${version}")
  file(READ ${f} sql)
  string(APPEND body "  Migration{${version}, R\"apsis_sql(${sql})apsis_sql\"},\n")
endforeach()
string(APPEND body "};\n}\n")
file(WRITE ${OUT} "${body}")
