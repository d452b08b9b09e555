# What `cmake --install` puts where, and the Debian package CPack makes of it
# (`cmake --build build --target package` → build/apsis-exportd_<version>_<arch>.deb).
# Every install() rule of the project goes into the package, the man pages and the completion too.
#
# Paths under the prefix (bin, share, lib/sysusers.d) follow the prefix: CPack's DEB generator
# installs with prefix /usr. The unit and the configuration have fixed places on Debian, outside it.
include(GNUInstallDirs)
include(${CMAKE_SOURCE_DIR}/cmake/packaged_config.cmake)

set(APSIS_SYSTEMD_UNITDIR /lib/systemd/system CACHE PATH "Where the systemd unit is installed")
set(APSIS_CONFDIR /etc/apsis-exportd CACHE PATH "Where the example configuration is installed")

install(TARGETS apsis-exportd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_SOURCE_DIR}/systemd/apsis-exportd.service DESTINATION ${APSIS_SYSTEMD_UNITDIR})
apsis_packaged_config(${CMAKE_BINARY_DIR}/packaging/apsis-exportd.yaml)
install(FILES ${CMAKE_BINARY_DIR}/packaging/apsis-exportd.yaml DESTINATION ${APSIS_CONFDIR})
# Side by side: drop-in.schema.json takes its account and export definitions from exports.schema.json by
# a relative $ref, which editors resolve against the directory they loaded it from.
install(FILES ${CMAKE_SOURCE_DIR}/schema/exports.schema.json ${CMAKE_SOURCE_DIR}/schema/drop-in.schema.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/apsis-exportd)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/sysusers.conf DESTINATION lib/sysusers.d
        RENAME apsis-exportd.conf)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/debian/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME apsis-exportd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "apsis-exportd maintainers <maintainers@users.noreply.r-seed-f2a6208e.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "scheduled APSIS One profile exports, delivered to disk")
set(CPACK_PACKAGE_DESCRIPTION
    "apsis-exportd submits APSIS One profile exports (duplicates, consents, segments, events) on a
schedule, polls until each file is ready, and publishes it complete or not at all, within each
account's API budget. Every step of every job is a row in a SQLite (or PostgreSQL) job table, so a
restart resumes where it stood. Runs as a hardened systemd service under its own system user.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # apsis-exportd_<version>_<arch>.deb
# The build is RelWithDebInfo: the packaged binary goes without its debug info (112 MB → a few MB).
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
if(PROJECT_HOMEPAGE_URL)
  set(CPACK_DEBIAN_PACKAGE_HOMEPAGE ${PROJECT_HOMEPAGE_URL})
endif()
# Library dependencies come from the binary (dpkg-shlibdeps). Typed here only what no library says:
# the postinst runs systemd-sysusers (systemd, or a standalone sysusers), and schedules read the
# system's IANA time zone database at run time. ca-certificates: the default trust store for
# api.apsis.one, unless every account names its own ca_file.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd | systemd-sysusers, tzdata")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/debian/conffiles
    ${CMAKE_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_SOURCE_DIR}/packaging/debian/prerm
    ${CMAKE_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
