/* Fathom engine: everything public. */
#pragma once

#include <fathom/core.h>
#include <fathom/tensor.h>
#include <fathom/graph.h>
#include <fathom/backend.h>
