# server build rules
