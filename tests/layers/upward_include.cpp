// Not part of any build: tests/layers/CMakeLists.txt preprocesses this file with the include paths of
// one daemon library and checks which of the two includes is found.
//
// With apsis_store's paths the first include is found (store's own layer, via util) and the second is
// not: store sits below jobs, so it must not see jobs' headers. With apsis_jobs' paths both are found,
// which shows the header exists and the first check fails for the right reason.
#include "util/time.hpp"
#include "jobs/job_lifecycle.hpp"
