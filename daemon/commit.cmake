# cmake -DSRC=<source dir> -DOUT=<header> -P daemon/commit.cmake: writes OUT, defining VIGIL_COMMIT
# (build.h's build_commit: vigild --version, vigil_build_info, /health's "commit") as the short
# commit of the git checkout SRC is the top of, "-dirty" after it when tracked files differ from
# it, else "" (no git, or a source that is not a checkout's top: a tarball or a cpack source
# package unpacked inside another repository, whose commit would mislead). Run at every build
# (daemon/CMakeLists.txt), so a rebuild after a commit or a checkout says the new one without a
# new cmake run; OUT is rewritten only when the string changes, so a rebuild at the same commit
# compiles and links nothing again.
set(commit "")
find_program(GIT_PROGRAM git)
if(GIT_PROGRAM)
  execute_process(COMMAND ${GIT_PROGRAM} rev-parse --show-toplevel WORKING_DIRECTORY ${SRC}
                  OUTPUT_VARIABLE top RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE
                  ERROR_QUIET)
  get_filename_component(top "${top}" REALPATH)
  get_filename_component(src "${SRC}" REALPATH)
  if(rc EQUAL 0 AND top STREQUAL src)
    execute_process(COMMAND ${GIT_PROGRAM} rev-parse --short=12 HEAD WORKING_DIRECTORY ${SRC}
                    OUTPUT_VARIABLE head RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE
                    ERROR_QUIET)
    if(rc EQUAL 0 AND head MATCHES "^[0-9a-f]+$")
      set(commit ${head})
      # --no-optional-locks: the status does not rewrite the index under the user's own git.
      execute_process(COMMAND ${GIT_PROGRAM} --no-optional-locks status --porcelain
                              --untracked-files=no
                      WORKING_DIRECTORY ${SRC} OUTPUT_VARIABLE changed RESULT_VARIABLE rc
                      ERROR_QUIET)
      if(NOT rc EQUAL 0 OR NOT changed STREQUAL "")
        set(commit ${head}-dirty)
      endif()
    endif()
  endif()
endif()
file(CONFIGURE OUTPUT ${OUT} CONTENT "#define VIGIL_COMMIT \"${commit}\"\n")
