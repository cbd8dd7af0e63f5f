/* Shared by the tests in tests/train. */
#pragma once

#include "fth-test-project.h"

/* The name the tests here use for it. */
#define train_test_rmtree fth_test_rmtree
