-- Filters and summaries by site and software version.
CREATE INDEX dsns_site ON dsns (site, id);
CREATE INDEX dsns_software_version ON dsns (software_version, id);
