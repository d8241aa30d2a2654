# `make deb` (cpack -G DEB in the build dir): the Debian package of the tripline binary, its
# systemd unit, /etc/default/tripline and the maintainer scripts in deploy/debian/.
# Only the tripline target is packaged; `make deb` builds it before cpack, and install does not
# depend on "all" (so packaging never builds the tests).
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

install(TARGETS tripline RUNTIME DESTINATION bin)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/systemd/tripline.service DESTINATION /lib/systemd/system)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/debian/tripline.default DESTINATION /etc/default
        RENAME tripline)
# Debian wants the changelog gzipped, reproducibly (-n: no name or time stamp in the header).
execute_process(COMMAND gzip -9nc ${CMAKE_SOURCE_DIR}/deploy/debian/changelog
                OUTPUT_FILE ${CMAKE_BINARY_DIR}/changelog.gz COMMAND_ERROR_IS_FATAL ANY)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/deploy/debian/changelog)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/deploy/debian/copyright
        ${CMAKE_BINARY_DIR}/changelog.gz DESTINATION share/doc/tripline)
install(FILES ${CMAKE_SOURCE_DIR}/deploy/debian/lintian-overrides
        DESTINATION share/lintian/overrides RENAME tripline)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tripline)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "tripline maintainers <tripline@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "rule-driven webhook trigger service")
set(CPACK_PACKAGE_DESCRIPTION "tripline turns authenticated HTTP calls (Alertmanager, Docker Hub,
GitHub, CI, curl) into actions: scaling Swarm services and Kubernetes
workloads, RFC 2136 DNS updates and signed webhooks, with rules, rate limits
and an execution history in SQLite or PostgreSQL.")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)   # tripline_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: the shared libraries' packages, computed by dpkg-shlibdeps (libpq5 among them: the
# binary links it for PostgreSQL databases), plus adduser for postinst. PostgreSQL's server is
# not a dependency: it runs wherever the operator's database is (docs/postgres.md).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "docker.io, nginx, postgresql")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/deploy/debian/postinst
    ${CMAKE_SOURCE_DIR}/deploy/debian/prerm
    ${CMAKE_SOURCE_DIR}/deploy/debian/postrm
    ${CMAKE_SOURCE_DIR}/deploy/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_PACKAGE_FILE_NAME tripline)   # only for the other generators; DEB uses the line above
include(CPack)
