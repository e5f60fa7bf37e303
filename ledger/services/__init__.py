"""Use cases: each public function opens one database transaction through
``Database.transaction`` and either does all of its work or none."""
