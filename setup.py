"""Package metadata, read from settings.ini (the nbdev template, with extras for every `*_requirements` key)."""
from configparser import ConfigParser
from packaging.version import Version
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

licenses = {'apache2': 'Apache-2.0', 'mit': 'MIT'}  # SPDX expressions
statuses = ['Planning', 'Pre-Alpha', 'Alpha', 'Beta', 'Production/Stable', 'Mature', 'Inactive']
lic = licenses[cfg['license']]
min_python = cfg['min_python']
py_versions = [v for v in ['3.10', '3.11', '3.12', '3.13'] if Version(v) >= Version(min_python)]

extras = {k[:-len('_requirements')]: cfg[k].split()
          for k in cfg if k.endswith('_requirements') and k != 'requirements'}
extras['all'] = sorted({r for rs in extras.values() for r in rs})

setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'], license=lic,
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])], 'Intended Audience :: ' + cfg['audience'].title(),
                 'Natural Language :: ' + cfg['language'].title()]
                + [f'Programming Language :: Python :: {v}' for v in py_versions],
    url=cfg['git_url'], packages=setuptools.find_packages(include=[cfg['lib_name'], cfg['lib_name'] + '.*']),
    include_package_data=True, package_data={cfg['lib_name']: ['weights/*.safetensors', 'weights/*.json']}, install_requires=cfg['requirements'].split(), extras_require=extras,
    python_requires='>=' + min_python,
    long_description=open('README.md', encoding='utf-8').read(), long_description_content_type='text/markdown',
    zip_safe=False, entry_points={'console_scripts': cfg['console_scripts'].split(),
                                  'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    author=cfg['author'], author_email=cfg['author_email'], description=cfg['description'],
    keywords=cfg['keywords'])
