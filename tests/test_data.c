#include "test.h"
void register_data_tests(void) {}
