#include "test.h"
void register_cli_tests(void) {}
