# cmake -DSCRIPT=daemon/commit.cmake -DWORK=<scratch dir> -P tests/test_commit.cmake: the build's
# commit as daemon/commit.cmake writes it, in throwaway repositories under WORK: a checkout's top
# gets its HEAD, "-dirty" once a tracked file changes and the new HEAD after a commit (what a
# rebuild must follow); a source unpacked inside another repository (a tarball in a packaging
# repository) gets "", not that repository's commit; an unchanged string leaves the
# header's time alone (no recompiling at each build).
find_program(GIT_PROGRAM git)
if(NOT GIT_PROGRAM)
  message("SKIP: no git (commit.cmake then says \"\")")
  return()
endif()
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/repo/tarball)
set(out ${WORK}/vigil_commit.h)
function(git)
  execute_process(COMMAND git -c user.name=t -c user.email=t@t -c init.defaultBranch=main ${ARGN}
                  WORKING_DIRECTORY ${WORK}/repo RESULT_VARIABLE rc OUTPUT_QUIET)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "git ${ARGN}: ${rc}")
  endif()
endfunction()
function(expect src want)
  execute_process(COMMAND ${CMAKE_COMMAND} -DSRC=${src} -DOUT=${out} -P ${SCRIPT}
                  RESULT_VARIABLE rc)
  file(READ ${out} got)
  if(NOT rc EQUAL 0 OR NOT got STREQUAL "#define VIGIL_COMMIT \"${want}\"\n")
    message(FATAL_ERROR "SRC=${src}: want ${want}, got (${rc}) ${got}")
  endif()
endfunction()
function(head var)
  execute_process(COMMAND git rev-parse --short=12 HEAD WORKING_DIRECTORY ${WORK}/repo
                  OUTPUT_VARIABLE h OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(${var} ${h} PARENT_SCOPE)
endfunction()

git(init -q)
file(WRITE ${WORK}/repo/a.c "1\n")
file(WRITE ${WORK}/repo/tarball/CMakeLists.txt "\n")
git(add .)
git(commit -q -m one)
head(one)
expect(${WORK}/repo ${one})
expect(${WORK}/repo/tarball "")
file(WRITE ${WORK}/repo/untracked.txt "x\n") # untracked: not dirty
expect(${WORK}/repo ${one})
file(TIMESTAMP ${out} t1 "%s")
execute_process(COMMAND sleep 1.1)
expect(${WORK}/repo ${one})
file(TIMESTAMP ${out} t2 "%s")
if(NOT t1 STREQUAL t2)
  message(FATAL_ERROR "the header was rewritten with the same commit (${t1} -> ${t2})")
endif()
file(WRITE ${WORK}/repo/a.c "2\n")
expect(${WORK}/repo ${one}-dirty)
git(commit -q -a -m two)
head(two)
expect(${WORK}/repo ${two})
file(REMOVE_RECURSE ${WORK})
