# ctest "layering" (tests/CMakeLists.txt): what per-layer include directories cannot catch,
# because system headers are on every target's path. Run as
#   cmake -DSOURCE_DIR=... -P cmake/CheckLayering.cmake
# Fails naming each offending file and line.
set(_bad "")
file(GLOB_RECURSE _sources ${SOURCE_DIR}/server/*.h ${SOURCE_DIR}/server/*.cpp
                            ${SOURCE_DIR}/drivers/*.h ${SOURCE_DIR}/drivers/*.cpp)
foreach(f IN LISTS _sources)
  file(RELATIVE_PATH rel ${SOURCE_DIR} ${f})
  file(STRINGS ${f} _includes REGEX "^#include ")
  foreach(line IN LISTS _includes)
    # Pistache belongs to the HTTP layer alone, SQLite to the store's SQLite implementation, ldns
    # to dns-update, yaml-cpp to scale-service (kubeconfig files).
    if(line MATCHES "<pistache/" AND NOT rel MATCHES "^server/http/")
      list(APPEND _bad "${rel}: ${line} (Pistache is private to server/http)")
    endif()
    if(line MATCHES "<(SQLiteCpp/|sqlite3)" AND NOT rel MATCHES "^server/store/sqlite/")
      list(APPEND _bad "${rel}: ${line} (SQLite is private to server/store/sqlite)")
    endif()
    # libpq belongs to the store's PostgreSQL implementation.
    if(line MATCHES "<(libpq-fe\\.h|libpq/|pqxx)" AND NOT rel MATCHES "^server/store/postgres/")
      list(APPEND _bad "${rel}: ${line} (libpq is private to server/store/postgres)")
    endif()
    # The layers above see the store's contract (store.h) alone; only Store::open
    # (open_store.cpp) names an implementation (README.md, "The store"), and the copy from SQLite
    # to PostgreSQL (migrate_to_postgres.cpp, tripline migrate-data), which reads one and writes
    # the other, each through its own non-virtual export/import (docs/migrate-data.md).
    if(line MATCHES "([\"/<]sqlite/|sqlite_store\\.h)" AND NOT rel MATCHES "^server/store/((open_store|migrate_to_postgres)\\.cpp$|sqlite/)")
      list(APPEND _bad "${rel}: ${line} (the store's implementations are private to server/store)")
    endif()
    if(line MATCHES "([\"/<]postgres/|postgres_store\\.h)" AND NOT rel MATCHES "^server/store/((open_store|migrate_to_postgres)\\.cpp$|postgres/)")
      list(APPEND _bad "${rel}: ${line} (the store's implementations are private to server/store)")
    endif()
    if(line MATCHES "<ldns/" AND NOT rel MATCHES "^drivers/dns_update/")
      list(APPEND _bad "${rel}: ${line} (ldns is private to drivers/dns_update)")
    endif()
    if(line MATCHES "<yaml-cpp/" AND NOT rel MATCHES "^drivers/scale_service/")
      list(APPEND _bad "${rel}: ${line} (yaml-cpp is private to drivers/scale_service)")
    endif()
    if(line MATCHES "<CLI/" AND NOT rel MATCHES "^server/cli/")
      list(APPEND _bad "${rel}: ${line} (CLI11 is private to server/cli)")
    endif()
    # A relative path reaches around the layers' include directories; drivers may name their
    # own contract as "../driver.h", and their integration tests the test harness.
    if(line MATCHES "\"\\.\\./" AND NOT line MATCHES "\"\\.\\./driver\\.h\"" AND NOT line MATCHES "\"\\.\\./\\.\\./tests/")
      list(APPEND _bad "${rel}: ${line} (include by name, through the layer's target)")
    endif()
    if(line MATCHES "<regex>")
      list(APPEND _bad "${rel}: ${line} (use RE2: linear time, no stack overflow on hostile input)")
    endif()
  endforeach()
endforeach()
if(_bad)
  list(JOIN _bad "\n  " _msg)
  message(FATAL_ERROR "layering violations:\n  ${_msg}")
endif()
message(STATUS "layering: ok")
