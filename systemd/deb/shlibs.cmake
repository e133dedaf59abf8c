# systemd/deb/shlibs.cmake: a CPack pre-build script (CPACK_PRE_BUILD_SCRIPTS). It puts
# shlibs.local where CPackDeb runs dpkg-shlibdeps (its staging directory's debian/, which CPackDeb
# makes and removes afterwards, so the file is not in the package): dpkg-shlibdeps then asks
# libsqlite3-0 (>= 3.35) itself, the version storage needs (RETURNING, which no symbol shows:
# the symbols file alone asks 3.20), and the Depends line names libsqlite3-0 once (session 69:
# CPACK_DEBIAN_PACKAGE_DEPENDS added a second libsqlite3-0 beside dpkg-shlibdeps' own).
file(COPY "${CMAKE_CURRENT_LIST_DIR}/shlibs.local"
     DESTINATION "${CPACK_TEMPORARY_DIRECTORY}/debian")
