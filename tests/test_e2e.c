#include "test.h"
void register_e2e_tests(void) {}
