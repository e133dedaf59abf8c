# model/detector.cmake: the per-device detector (model/detector.h), included by
# model/CMakeLists.txt. Its sources join the model library; its unit test and the vigil-replay
# contract test are registered here.
target_sources(model PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/detector.c
  ${CMAKE_CURRENT_LIST_DIR}/detector_score.c
  ${CMAKE_CURRENT_LIST_DIR}/detector_likelihood.c
  ${CMAKE_CURRENT_LIST_DIR}/detector_onset.c
  ${CMAKE_CURRENT_LIST_DIR}/detector_train.c
  ${CMAKE_CURRENT_LIST_DIR}/detector_calib.c
  ${CMAKE_CURRENT_LIST_DIR}/detector_season.c
  ${CMAKE_CURRENT_LIST_DIR}/detector_io.c
  ${CMAKE_CURRENT_LIST_DIR}/detector_pred.c
  ${CMAKE_CURRENT_LIST_DIR}/detector_load.c
  ${CMAKE_CURRENT_LIST_DIR}/detector_burst.c
  ${CMAKE_CURRENT_LIST_DIR}/detector_release.c
  ${CMAKE_CURRENT_LIST_DIR}/detector_shift.c
  ${CMAKE_CURRENT_LIST_DIR}/detector_opinion.c)

if(BUILD_TESTING)
  # tests/test_detector.c holds main(); its tests are in one file per part of the detector
  # (tests/test_detector_<topic>.c), their shared fixtures in tests/test_detector_fx.c.
  add_executable(test_detector
    ${PROJECT_SOURCE_DIR}/tests/test_detector.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_fx.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_score.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_warn.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_train.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_calib.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_io.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_season.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_shift.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_burst.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_onset.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_trip.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_number.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_range.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_rank.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_level.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_inputs.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_hold.c
    ${PROJECT_SOURCE_DIR}/tests/test_detector_episode.c
  )
  target_link_libraries(test_detector model PkgConfig::CMOCKA)
  add_test(NAME unit_detector COMMAND test_detector)
  # One OpenBLAS thread, as vigild and vigil-replay run it (and no spinning threads beside
  # the parallel builds). About 45 s alone in a Release build, over 120 s with a benchmark
  # sharing the two cores (session 15), more under the sanitizers: the timeout is for a hang.
  set_tests_properties(unit_detector PROPERTIES TIMEOUT 600 ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
  # vigil-replay is defined in tools/, which is added after model/: generator expressions
  # resolve at generate time, so naming the target here is fine.
  add_test(NAME it_replay
           COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/tests/replay_contract.py
                   $<TARGET_FILE:vigil-replay>)
  set_tests_properties(it_replay PROPERTIES TIMEOUT 120
                       ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
endif()
